"""What a scenario drives on the local stack: Airflow's REST API (as admin), supervisord's programs, the captures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
import xmlrpc.client
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import psutil

from local_stack.secrets import ensure_airflow_passwords
from local_stack.settings import StackSettings
from local_stack.supervisor_control import rpc

REQUEST_TIMEOUT = 10.0
LOCKED_RETRY_SECONDS = 30.0  # SQLite answers a write with 500 "database is locked" while the scheduler writes


class IncidentError(RuntimeError):
    """A scenario could not be set up or undone; the message says which step and what came back."""


class StackClient:
    def __init__(self, settings: StackSettings, user: str = "admin") -> None:
        """Signed in to Airflow as `user`, one of the stack's accounts (`admin`, or the read-only `oncall`)."""
        self.settings = settings
        self.user = user
        self._token: str | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- Airflow's REST API -------------------------------------------------------------------------------
    def _request(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the stack's own loopback URL
            url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with self._opener.open(request, timeout=REQUEST_TIMEOUT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        """The user's JWT from Airflow's /auth/token (the value of the UI's session cookie), signed in once."""
        if self._token is None:
            password = ensure_airflow_passwords(self.settings)[self.user]
            url = self.settings.url("airflow") + "/auth/token"
            status, body = self._request("POST", url, {"username": self.user, "password": password})
            if status != 201:
                raise IncidentError(f"logging in to Airflow at {url} as {self.user} gave HTTP {status}")
            self._token = body["access_token"]
        return self._token

    def signed_in_get(self, url: str) -> tuple[int, Any]:
        """(status, body) of a GET as the signed-in user: a page of the console, a REST resource, or (the token is
        sent only where asked) another component of the stack."""
        return self._request("GET", url, headers=self._bearer())

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 204)) -> Any:
        """One REST call under /api/v2; a SQLite lock (500) is retried for a bounded time."""
        url = f"{self.settings.url('airflow')}/api/v2{path}"
        deadline = time.monotonic() + LOCKED_RETRY_SECONDS
        while True:
            status, answer = self._request(method, url, body, self._bearer())
            if status in ok:
                return answer
            if status != 500 or time.monotonic() > deadline:
                raise IncidentError(f"{method} {path} gave HTTP {status}: {str(answer)[:300]}")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: datetime | None = None) -> str:
        """A manual run, by default now (microseconds make each logical date fresh, so runs never collide)."""
        when = (logical_date or datetime.now(UTC)).isoformat(timespec="microseconds").replace("+00:00", "Z")
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": when, "conf": conf or {}})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise IncidentError(f"run {run_id} of {dag_id} is still {state} after {timeout:.0f}s")
            time.sleep(2)
        return state

    def set_variable(self, key: str, value: str) -> None:
        """Create or overwrite an Airflow Variable."""
        body = {"key": key, "value": value}
        try:
            self.api("POST", "/variables", body, ok=(201,))
        except IncidentError:  # it exists (HTTP 409): overwrite it
            self.api("PATCH", f"/variables/{quote(key, safe='')}", body)

    def set_pool_slots(self, pool: str, slots: int) -> int:
        """Set a pool's slots; returns what it had."""
        before = self.api("GET", f"/pools/{pool}")["slots"]
        self.api("PATCH", f"/pools/{pool}?update_mask=slots", {"name": pool, "slots": slots})
        return before

    # --- Prometheus ----------------------------------------------------------------------------------------
    def wait_for_value(self, query: str, timeout: float = 60.0) -> float:
        """The first sample of an instant PromQL query, once it has one (the exporter learns within a scrape)."""
        url = f"{self.settings.url('prometheus')}/api/v1/query?query={quote(query, safe='')}"
        deadline = time.monotonic() + timeout
        while True:
            status, body = self._request("GET", url)
            result = body.get("data", {}).get("result", []) if status == 200 and isinstance(body, dict) else []
            if result:
                return float(result[0]["value"][1])
            if time.monotonic() > deadline:
                raise IncidentError(f"Prometheus had no sample for {query} within {timeout:.0f}s (HTTP {status})")
            time.sleep(1)

    # --- supervisord ---------------------------------------------------------------------------------------
    def program_pid(self, name: str) -> int:
        return int(rpc(self.settings).supervisor.getProcessInfo(name)["pid"])

    def kill_program(self, name: str, timeout: float = 30.0) -> None:
        """SIGKILL the program's process group (no clean shutdown), and keep supervisord from restarting it."""
        pid = self.program_pid(name)
        if pid:
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while rpc(self.settings).supervisor.getProcessInfo(name)["statename"] != "STOPPED":
            if time.monotonic() > deadline:
                raise IncidentError(f"{name} did not stay stopped within {timeout:.0f}s")
            try:
                rpc(self.settings).supervisor.stopProcess(name, True)
            except xmlrpc.client.Fault:  # already exiting, or between states: look again
                time.sleep(0.5)

    def kill_program_tree(self, name: str, timeout: float = 30.0) -> None:
        """SIGKILL a program and every process under it, as when its machine is lost.

        A task's process runs in a process group of its own, so killing the program's group would leave it
        running (and heartbeating). The program must be one supervisord does not restart (a Celery worker).
        """
        main = psutil.Process(self.program_pid(name))
        doomed = [main, *main.children(recursive=True)]
        for process in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(doomed, timeout=timeout)
        deadline = time.monotonic() + timeout
        while (state := rpc(self.settings).supervisor.getProcessInfo(name)["statename"]) not in ("EXITED", "STOPPED"):
            if time.monotonic() > deadline:
                raise IncidentError(f"{name} is {state} {timeout:.0f}s after it was killed; expected it to stay down")
            time.sleep(0.5)

    def start_program(self, name: str) -> None:
        try:
            rpc(self.settings).supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise IncidentError(f"starting {name}: {fault.faultString}") from fault

    def start_stopped_programs(self) -> None:
        """Start every program that is not running (what `make up` does for a stack that is partly down)."""
        for info in rpc(self.settings).supervisor.getAllProcessInfo():
            if info["statename"] not in ("RUNNING", "STARTING"):
                self.start_program(info["name"])

    def wait_airflow_healthy(self, timeout: float = 180.0) -> None:
        """Until Airflow's own health report calls every component healthy: a recovery is over only then."""
        url = self.settings.url("airflow") + "/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, report = self._request("GET", url)
            except OSError:  # the api-server itself is still starting
                status, report = 0, None
            if status == 200 and all(part.get("status") == "healthy" for part in report.values()):
                return
            if time.monotonic() > deadline:
                raise IncidentError(f"Airflow did not report every component healthy within {timeout:.0f}s: {report}")
            time.sleep(2)
