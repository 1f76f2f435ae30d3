"""From a connection id of dag_suite.connections to a base URL (and credentials), with a clear error when unset."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException


class ConnectionNotConfigured(RuntimeError):
    """The connection id is not defined (no AIRFLOW_CONN_<ID>, secrets backend entry or UI connection)."""

    def __init__(self, conn_id: str) -> None:
        super().__init__(f"connection {conn_id} not configured")
        self.conn_id = conn_id


@dataclass(frozen=True)
class Endpoint:
    conn_id: str
    base_url: str
    login: str | None = None
    password: str | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def base_url(host: str, port: int | None, conn_type: str | None, schema: str | None) -> str:
    """The URL an HTTP connection points at: like HttpHook's, but `https://...` URIs keep their scheme."""
    if "://" in host:
        url = host
    else:
        scheme = schema if schema in ("http", "https") else ("https" if conn_type == "https" else "http")
        url = f"{scheme}://{host}"
    if port:
        url = f"{url}:{port}"
    return url.rstrip("/")


def endpoint(conn_id: str) -> Endpoint:
    """The endpoint behind `conn_id`; raises ConnectionNotConfigured if it is missing or has no host."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        raise ConnectionNotConfigured(conn_id) from exc
    if not conn.host:
        raise ConnectionNotConfigured(conn_id)
    return Endpoint(conn_id, base_url(conn.host, conn.port, conn.conn_type, conn.schema), conn.login, conn.password)
