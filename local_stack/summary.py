"""What `make up` prints once the stack is healthy: every URL, the logins, where captures write."""

from __future__ import annotations

from collections.abc import Callable

from local_stack.programs import celery_workers
from local_stack.secrets import airflow_passwords_file, ensure_airflow_passwords, flower_basic_auth
from local_stack.settings import LOOPBACK, StackSettings


def summary_lines(settings: StackSettings) -> list[str]:
    passwords = ensure_airflow_passwords(settings)
    port = settings.ports
    lines = [
        "",
        "Airflow observability stack (all on loopback)",
        f"  Airflow UI / REST API   {settings.url('airflow')}          health: /api/v2/monitor/health",
        f"  on-call console         {settings.url('airflow')}/plugin/oncall   (each DAG: its Monitoring tab)",
        f"  runbooks                {settings.url('airflow')}/observability/runbooks/",
        f"  exporter                {settings.url('exporter')}/metrics",
        f"  Prometheus              {settings.url('prometheus')}          (alerts: /alerts, targets: /targets)",
        f"  Alertmanager            {settings.url('alertmanager')}",
        f"  node_exporter           {settings.url('node_exporter')}/metrics",
        "",
        "Airflow logins (UI auth is on)",
        f"  admin   / {passwords['admin']}   (admin)",
        f"  oncall  / {passwords['oncall']}   (read-only viewer)",
        f"  stored in {airflow_passwords_file(settings)} (owner-only)",
        "",
        "Alert captures (stand-ins for Slack, a mail relay and a pager)",
        f"  Slack webhook   {settings.url('slack_capture')}/services/...  -> {settings.capture_file('slack')}",
        f"  SMTP            {LOOPBACK}:{port['smtp_capture']}                 -> {settings.capture_file('smtp')}",
        f"  webhook/pager   {settings.url('webhook_capture')}/pager       -> {settings.capture_file('webhook')}",
        "",
        *_celery_lines(settings),
        f"Metadata DB: {settings.db}; executor: {settings.executor}; logs: {settings.logs_dir}",
        "`make status` checks every component, `make down` stops them all (data is kept).",
    ]
    return lines


def _celery_lines(settings: StackSettings) -> list[str]:
    workers = celery_workers(settings)
    if not workers:
        return []
    user, _, password = flower_basic_auth(settings).partition(":")
    return [
        f"CeleryExecutor: {len(workers)} workers ({', '.join(w.celery_name for w in workers)})",
        f"  Redis broker    {LOOPBACK}:{settings.ports['redis']} (password in {settings.secrets_dir}/redis_password)",
        f"  Flower          {settings.url('flower')}   login {user} / {password}; metrics: /metrics",
        f"  redis_exporter  {settings.url('redis_exporter')}/metrics  (queue depth: redis_key_size)",
        "",
    ]


def print_summary(settings: StackSettings, say: Callable[[str], None]) -> None:
    for line in summary_lines(settings):
        say(line)
