"""The environment every Airflow process of the local stack runs with (api-server, scheduler, CLI calls)."""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

from airflow_obs.observability.settings import SETTINGS as PLUGIN_SETTINGS
from dag_suite import connections
from dag_suite.warehouse import sqlite_conn_uri

from local_stack.secrets import (
    AIRFLOW_USERS,
    airflow_internal_secrets,
    airflow_passwords_file,
    ensure_airflow_passwords,
    ensure_secret,
    postgres_password,
    redis_password,
)
from local_stack.settings import LOOPBACK, REPO_ROOT, STACK_ENVIRONMENT, StackSettings


def metadata_db_url(settings: StackSettings) -> str:
    """SQLAlchemy URL of the metadata DB: SQLite in the stack's folder, or the stack's private PostgreSQL."""
    if settings.db == "postgres":
        password = quote(postgres_password(settings), safe="")
        return f"postgresql+psycopg2://airflow:{password}@{LOOPBACK}:{settings.ports['postgres']}/airflow"
    return f"sqlite:///{settings.airflow_home / 'airflow.db'}"


def metadata_db_conn_uri(settings: StackSettings) -> str:
    """The metadata DB as an Airflow connection, for the maintenance DAGs (tasks cannot read Airflow's own URL)."""
    if settings.db == "postgres":
        return metadata_db_url(settings).replace("postgresql+psycopg2://", "postgresql://", 1)
    return sqlite_conn_uri(settings.airflow_home / "airflow.db")


def warehouse_url(settings: StackSettings) -> str:
    """The DAG suite's warehouse: a `warehouse` database beside Airflow's on PostgreSQL, else a SQLite file."""
    if settings.db == "postgres":
        password = quote(postgres_password(settings), safe="")
        return f"postgresql://airflow:{password}@{LOOPBACK}:{settings.ports['postgres']}/warehouse"
    return sqlite_conn_uri(settings.data_dir / "warehouse.db")


def celery_env(settings: StackSettings) -> dict[str, str]:
    """CeleryExecutor on the stack's Redis (broker) and PostgreSQL (result backend); empty for LocalExecutor."""
    if settings.executor != "celery":
        return {}
    redis = quote(redis_password(settings), safe="")
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{redis}@{LOOPBACK}:{settings.ports['redis']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_db_url(settings).replace("+psycopg2", "", 1),
    }


def connection_env(settings: StackSettings) -> dict[str, str]:
    """The suite's connections as AIRFLOW_CONN_* variables, pointing at the stack's loopback services."""
    # The status report reads the REST API with the read-only on-call account, never the admin one.
    oncall = quote(ensure_airflow_passwords(settings)["oncall"], safe="")
    urls = {
        connections.WAREHOUSE: warehouse_url(settings),
        connections.SOURCE_API: settings.url("source_api"),
        connections.AIRFLOW_API: f"http://oncall:{oncall}@{LOOPBACK}:{settings.ports['airflow']}",
        connections.PROMETHEUS: settings.url("prometheus"),
        connections.ALERTMANAGER: settings.url("alertmanager"),
        connections.EXPORTER: settings.url("exporter"),
        connections.METADATA_DB: metadata_db_conn_uri(settings),
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": url for conn_id, url in urls.items()}


def notification_env(settings: StackSettings) -> dict[str, str]:
    """The plugin's Slack, SMTP and webhook connections, pointing at the stack's captures, and the recipients.

    URI form (supervisord cannot pass a double quote, so no JSON). The Slack token and the webhook's HMAC
    key are generated once into the secrets folder: even locally, no credential is a committed constant.
    """
    folder = settings.secrets_dir
    token = ensure_secret(folder / "obs_slack_webhook_token", lambda: secrets.token_hex(12))
    hmac_key = ensure_secret(folder / "obs_webhook_hmac_key", lambda: secrets.token_urlsafe(32))
    slack_url = f"{settings.url('slack_capture')}/services/T0LOCAL00/B0LOCAL00/{token}"
    smtp_options = "disable_tls=true&disable_ssl=true&from_email=airflow-obs%40localhost&timeout=5&retry_limit=0"
    urls = {
        # The slack provider takes a whole webhook URL as the password of a `slackwebhook` connection.
        PLUGIN_SETTINGS["slack_conn_id"].default: f"slackwebhook://:{quote(slack_url, safe='')}@",
        PLUGIN_SETTINGS["smtp_conn_id"].default: f"smtp://{LOOPBACK}:{settings.ports['smtp_capture']}?{smtp_options}",
        # The password keys the X-Airflow-Obs-Signature HMAC; the path is the capture's.
        PLUGIN_SETTINGS["webhook_conn_id"].default: (
            f"http://:{quote(hmac_key, safe='')}@{LOOPBACK}:{settings.ports['webhook_capture']}/airflow-obs"
        ),
    }
    env = {f"AIRFLOW_CONN_{conn_id.upper()}": url for conn_id, url in urls.items()}
    env["AIRFLOW__OBSERVABILITY__EMAIL_TO"] = settings.endpoints.smtp_to
    return env


def airflow_env(settings: StackSettings) -> dict[str, str]:
    """Airflow settings as AIRFLOW__SECTION__KEY variables, so no airflow.cfg needs editing."""
    api_url = settings.url("airflow")
    env = {
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The suite is there to be observed running: its DAGs start unpaused.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # The default of 32 forks 32 idle workers; 2 cores need far fewer.
        "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url(settings),
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(settings.ports["airflow"]),
        # The execution API URL derives from base_url: without the same port every task fails to start.
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in AIRFLOW_USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_passwords_file(settings)),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.ports["worker_log_server"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.ports["trigger_log_server"]),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # A new DAG file (or a broken one, see `make incident SCENARIO=import_error`) shows within 30 s, not 5 min.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Where the toolkit's own links (alerts, notifications) point; one value for every component.
        "AIRFLOW__OBSERVABILITY__AIRFLOW_URL": api_url,
        "AIRFLOW__OBSERVABILITY__ALERTMANAGER_URL": settings.url(
            "alertmanager"
        ),  # the console lists and silences alerts there
        "AIRFLOW__OBSERVABILITY__PROMETHEUS_URL": settings.url(
            "prometheus"
        ),  # the console's baselines and scrape health
        # Alertmanager routes the plugin's pages like every other alert.
        "AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL": settings.url("alertmanager"),
        "AIRFLOW__OBSERVABILITY__ENVIRONMENT": STACK_ENVIRONMENT,
        "AIRFLOW_OBS_DATA_DIR": str(settings.data_dir),
    }
    env.update(celery_env(settings))
    env.update(connection_env(settings))
    env.update(notification_env(settings))
    env.update(airflow_internal_secrets(settings))
    return env


def process_env(settings: StackSettings) -> dict[str, str]:
    """The current environment plus the stack's Airflow settings, for subprocesses such as `airflow db migrate`."""
    merged = dict(os.environ)
    merged.update(airflow_env(settings))
    return merged
