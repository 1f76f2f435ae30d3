"""The real `airflow-obs exporter` while its metadata DB goes away, stalls and comes back.

A scrape must still answer within 2 s with airflow_up 0 and the exporter's own metrics, and report
airflow_up 1 again on the first scrape after the DB is back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from local_stack import throwaway_postgres
from tests.conftest import free_port
from tests.integration.conftest import AIRFLOW_OBS, wait_for

ANSWER_WITHIN_SECONDS = 2.0


def scrape(port: int) -> tuple[float, dict[str, float]]:
    """(seconds the scrape took, {sample name with labels: value})."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.monotonic()
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    elapsed = time.monotonic() - started
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return elapsed, samples


def answers(port: int) -> dict[str, float] | None:
    try:
        return scrape(port)[1]
    except OSError:
        return None


class ExporterProcess:
    def __init__(self, port: int, log_file: Path) -> None:
        self.port = port
        self.log_file = log_file

    def log_lines(self) -> list[dict]:
        """The exporter's stderr so far: it logs JSON lines, like the plugin."""
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]


@contextmanager
def running_exporter(db_url: str) -> Iterator[ExporterProcess]:
    port = free_port()
    env = {**os.environ, "AIRFLOW_OBS_EXPORTER_DB_URL": db_url, "AIRFLOW_OBS_EXPORTER_SNAPSHOT_CACHE_SECONDS": "0"}
    env.pop("AIRFLOW__OBSERVABILITY__LOG_FORMAT", None)
    log_file = Path(tempfile.mkdtemp(prefix="exporter-log-")) / "stderr.log"
    with log_file.open("wb") as stderr:
        process = subprocess.Popen(
            [AIRFLOW_OBS, "exporter", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        wait_for(lambda: process.poll() is not None or answers(port), 60, "the exporter to answer")
        assert process.poll() is None, f"the exporter exited with {process.returncode}"
        yield ExporterProcess(port, log_file)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        shutil.rmtree(log_file.parent, ignore_errors=True)


def assert_down_but_answering(port: int) -> None:
    elapsed, samples = scrape(port)
    assert elapsed < ANSWER_WITHIN_SECONDS
    assert samples["airflow_up"] == 0.0
    # The exporter's own metrics are still there.
    assert samples["airflow_exporter_collector_success{collector=dags}"] == 0.0
    assert samples["process_resident_memory_bytes"] > 0


def test_postgres_stopping_and_restarting_is_followed_scrape_by_scrape() -> None:
    folder = throwaway_postgres.make_folder()
    port = free_port()
    server = throwaway_postgres.start(folder, port)
    try:
        url = throwaway_postgres.create_airflow_database(port, "airflow")
        with running_exporter(url) as exporter:
            assert scrape(exporter.port)[1]["airflow_up"] == 1.0

            throwaway_postgres.stop(server)
            assert_down_but_answering(exporter.port)
            assert_down_but_answering(exporter.port)

            server = throwaway_postgres.start(folder, port)
            assert scrape(exporter.port)[1]["airflow_up"] == 1.0
            assert scrape(exporter.port)[1]["airflow_exporter_collector_success{collector=dags}"] == 1.0
            # The outage is in the exporter's log as JSON lines, with the fields every toolkit line has.
            outage = [line for line in exporter.log_lines() if line["message"].startswith("metadata DB unreachable")]
            assert outage and all(line["level"] == "WARNING" for line in outage)
            assert outage[0]["logger"] == "airflow_obs.exporter.collectors.health"
            assert {"ts", "trace_id", "span_id", "dag_id", "task_id"} <= set(outage[0])
    finally:
        throwaway_postgres.stop(server)


def test_a_stalled_postgres_costs_the_scrape_its_deadline_not_the_statement_timeout() -> None:
    import psycopg2

    with throwaway_postgres.throwaway_cluster() as port:
        url = throwaway_postgres.create_airflow_database(port, "airflow")
        with running_exporter(url) as exporter:
            exporter_port = exporter.port
            assert scrape(exporter_port)[1]["airflow_up"] == 1.0

            # A migration (or a stuck transaction) holds the dag table: every read of it waits.
            locker = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="airflow")
            try:
                locker.cursor().execute("LOCK TABLE dag IN ACCESS EXCLUSIVE MODE")
                assert_down_but_answering(exporter_port)
            finally:
                locker.rollback()
                locker.close()

            assert scrape(exporter_port)[1]["airflow_up"] == 1.0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
