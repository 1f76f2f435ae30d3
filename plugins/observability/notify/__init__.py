"""Direct notifications (Slack, email, a signed JSON webhook) for on-call engineers.

- `messages`: what a notification says (one neutral form, rendered three ways), with every link from `links`;
- `redaction`: what must never leave the process (connection secrets, tokens, webhook URLs);
- `sinks`: the three destinations, each reached through its Airflow connection;
- `retries`: one send, retried (5xx, 429, network) or not (4xx), with backoff or Retry-After;
- `delivery`: bounded sending to every sink at once; `spool`: what could not be sent, kept on disk;
- `state`: which DAGs last failed, so a success can say "recovered" once;
- `notifiers`: BaseNotifier subclasses tying these together; `observability.callbacks` uses them.
"""
