"""Pages for on-call engineers: alerts to Alertmanager, and Slack, email and a signed webhook when it cannot take them.

- `alerts`: the plugin's alerts as Alertmanager receives them; `alertmanager`: its API as a sink;
- `router`: Alertmanager first, the sinks directly when it cannot take a page; `outbox`: the background thread
  that sends for long-lived processes;
- `messages`: what a direct notification says (one neutral form, rendered three ways), with every link from `links`;
- `redaction`: what must never leave the process (connection secrets, tokens, webhook URLs);
- `sinks`: the three direct destinations, each reached through its Airflow connection;
- `retries`: one send, retried (5xx, 429, network) or not (4xx), with backoff or Retry-After;
- `delivery`: bounded sending to every sink at once; `spool`: what could not be sent, kept on disk;
- `state`: which DAGs were paged directly, so their recovery is sent directly too.
`observability.paging` turns listener events into pages; `observability.reconciler` ends what recovered.
"""
