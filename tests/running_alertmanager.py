"""A real Alertmanager 0.25 on a free loopback port, with the local stack's rendered routing and its own captures.

Shared by the routing tests (what Alertmanager inhibits, groups and sends) and the paging tests (what the plugin
posts and what then reaches Slack, email and the pager). Group timers are second-long, so a test sees its
notifications and resolutions at once; the process is stopped by PID, even when the test fails.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from local_stack.alertmanager_config import render_alertmanager_config
from local_stack.captures.http_capture import make_http_capture
from local_stack.captures.recorder import read_records
from local_stack.captures.smtp_capture import make_smtp_capture
from local_stack.processes import stop_process
from local_stack.settings import StackSettings, load_settings
from tests.conftest import free_port
from tests.integration.conftest import http_json, wait_for

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@dataclass
class RunningAlertmanager:
    url: str
    settings: StackSettings
    captures: dict[str, int]  # capture kind (slack, webhook, smtp) -> its port

    def post(self, *alerts: dict[str, Any]) -> None:
        status, reply = http_json(f"{self.url}/api/v2/alerts", list(alerts))
        assert status == 200, reply

    def alerts(self, *matchers: str) -> list[dict[str, Any]]:
        query = "&".join(f"filter={quote(matcher)}" for matcher in matchers)
        status, reply = http_json(f"{self.url}/api/v2/alerts?{query}")
        assert status == 200, reply
        return reply

    def silence(self, *matchers: tuple[str, str], minutes: int = 30) -> str:
        """An equality silence on (name, value) pairs; returns its id."""
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        body = {
            "matchers": [{"name": name, "value": value, "isRegex": False} for name, value in matchers],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            "createdBy": "tests",
            "comment": "silenced by a test",
        }
        status, reply = http_json(f"{self.url}/api/v2/silences", body)
        assert status == 200, reply
        return reply["silenceID"]

    def expire(self, silence_id: str) -> None:
        status, reply = http_json(f"{self.url}/api/v2/silence/{silence_id}", method="DELETE")
        assert status == 200, reply

    def records(self, kind: str, marker: str) -> list[dict[str, Any]]:
        """Captured notifications of `kind` (slack, webhook, smtp) that mention `marker`."""
        return [r for r in read_records(self.settings.capture_file(kind)) if marker in str(r)]


def quicken(route: dict[str, Any], top: bool = True) -> None:
    """Second-long group timers on every route, so a test sees its notifications (and resolutions) at once."""
    for timer in ("group_wait", "group_interval"):
        if top or timer in route:
            route[timer] = "1s"
    for child in route.get("routes", []):
        quicken(child, top=False)


@contextlib.contextmanager
def running_alertmanager(home: Path, port: int | None = None) -> Iterator[RunningAlertmanager]:
    """The local stack's rendered config with short group timers, in Alertmanager, delivering to captures."""
    with contextlib.ExitStack() as stack:
        ports = {}
        for kind in ("slack", "webhook"):
            server = make_http_capture(kind, "127.0.0.1", 0, home / "captures" / f"{kind}.jsonl")
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            ports[kind] = server.server_address[1]
        smtp = make_smtp_capture("127.0.0.1", 0, home / "captures" / "smtp.jsonl")
        smtp.start()
        stack.callback(smtp.stop, no_assert=True)
        ports["smtp"] = smtp.port
        settings = load_settings(
            env={
                "AIRFLOW_OBS_HOME": str(home),
                "AIRFLOW_OBS_SLACK_CAPTURE_PORT": str(ports["slack"]),
                "AIRFLOW_OBS_WEBHOOK_CAPTURE_PORT": str(ports["webhook"]),
                "AIRFLOW_OBS_SMTP_CAPTURE_PORT": str(smtp.port),
                "AIRFLOW_OBS_ALERTMANAGER_PORT": str(port or free_port()),
            }
        )
        config = render_alertmanager_config(settings)
        quicken(config["route"])
        config_file = home / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        url = settings.url("alertmanager")
        log = stack.enter_context((home / "alertmanager.log").open("w"))
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config_file}",
                f"--storage.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{settings.ports['alertmanager']}",
                f"--web.external-url={url}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin"},
        )
        stack.callback(stop_process, process, timeout=10)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"Alertmanager exited: {(home / 'alertmanager.log').read_text()}")
            with contextlib.suppress(OSError):
                return http_json(f"{url}/-/ready")[0] == 200
            return False

        wait_for(ready, 15, "Alertmanager to be ready", interval=0.1)
        yield RunningAlertmanager(url, settings, ports)


def unique(prefix: str) -> str:
    """A name no other test uses (environment, DAG id, pool), so tests sharing one Alertmanager never see each other."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def alert(alertname: str, environment: str, severity: str = "warning", **labels: str) -> dict[str, Any]:
    """An alert as Prometheus posts it, with the labels routing and inhibition read."""
    return {
        "labels": {"alertname": alertname, "severity": severity, "environment": environment, **labels},
        "annotations": {"summary": f"{alertname} in {environment}"},
    }
