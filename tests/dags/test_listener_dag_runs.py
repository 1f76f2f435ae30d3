"""The plugin's listeners in real DAG runs (dag.test()): every try and run, Airflow's StatsD, the JSON lines.

Two small DAGs of this module, written to the session's metadata DB the way the dag-processor would:
`obs_listener_probe` has a task that succeeds, one that fails its first try and succeeds on the retry, one
that always fails (with a masked secret and a URL password in its error) and one that skips itself, so its run
fails; `obs_listener_probe_ok` has one task that succeeds. Each runs once per module, with Airflow's StatsD
pointed at a UDP socket of the test and the toolkit's log lines in a buffer. In the same runs the traces
sink raises on every event: the outcomes must be those of a run without telemetry.
"""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow_obs.observability import logs, metrics, tracing

from tests.dags.conftest import task_states
from tests.statsd_mapping_matcher import UNMAPPED_METRIC_PREFIX, load_mappings, map_line, parse_line

MASKED_SECRET = "probe-secret-7f3a9c"  # noqa: S105  (a made-up secret the test must not find)
URL_PASSWORD = "hunter2-url-pass"  # noqa: S105
OWNER = "probe-owner"
TEAM = "analytics"


def probe_dags() -> tuple[DAG, DAG]:
    common = {
        "schedule": None,
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "tags": [f"team:{TEAM}"],
        "default_args": {"owner": OWNER, "retries": 0, "retry_delay": timedelta(0)},
    }
    with DAG("obs_listener_probe", **common) as failing:

        @task
        def succeeds() -> int:
            logging.getLogger("airflow_obs.probe").info("working inside the try")
            return 1

        @task(retries=1)
        def fails_once() -> None:
            if get_current_context()["ti"].try_number == 1:
                raise RuntimeError("first try fails on purpose")

        @task
        def always_fails() -> None:
            from airflow.sdk.log import mask_secret

            mask_secret(MASKED_SECRET)
            raise RuntimeError(f"login refused ({MASKED_SECRET}) at postgresql://etl:{URL_PASSWORD}@warehouse/dw")

        @task
        def skips() -> None:
            raise AirflowSkipException("nothing to do today")

        succeeds()
        fails_once()
        always_fails()
        skips()

    with DAG("obs_listener_probe_ok", **common) as succeeding:

        @task
        def only_task() -> int:
            return 1

        only_task()
    return failing, succeeding


def write_to_metadata_db(*dags: DAG) -> None:
    """Serialize the DAGs as the dag-processor does: dag.test() runs only DAGs the metadata DB knows."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:
        lazy = [LazyDeserializedDAG.from_dag(dag) for dag in dags]
        update_dag_parsing_results_in_db("dags-folder", None, lazy, {}, None, set(), session=session)


def reinitialise_task_sdk_stats() -> None:
    """Re-read [metrics]: Airflow initialises its Stats once, when `airflow.sdk` is first imported."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(
        factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on")
    )


def drain(udp: socket.socket) -> list[str]:
    lines = []
    udp.settimeout(0.5)
    while True:
        try:
            datagram = udp.recv(65535)
        except TimeoutError:
            return lines
        lines.extend(datagram.decode().splitlines())


@dataclass
class Runs:
    states: dict[str, dict[str, str]] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)
    run_states: dict[str, str] = field(default_factory=dict)
    traced: list[Any] = field(default_factory=list)  # events the traces sink received (before raising)
    statsd: list[str] = field(default_factory=list)
    log_text: str = ""

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_text.splitlines()]

    def event_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line["logger"] == logs.EVENT_LOGGER and "state" in line]


@pytest.fixture(scope="module")
def runs(airflow_db) -> Iterator[Runs]:
    result = Runs()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    buffer = io.StringIO()
    toolkit = logging.getLogger("observability")
    toolkit_level = toolkit.level

    def traces_sink_that_raises(event: Any) -> None:
        result.traced.append(event)
        raise ConnectionError("trace collector unreachable")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
        patch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
        patch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(udp.getsockname()[1]))
        patch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
        patch.setenv("AIRFLOW__METRICS__LEGACY_NAMES_ON", "False")
        patch.setattr(tracing, "record_task_event", traces_sink_that_raises)
        patch.setattr(tracing, "record_dag_run_event", traces_sink_that_raises)
        reinitialise_task_sdk_stats()
        toolkit.setLevel(logging.INFO)
        logs.setup_logging("json", stream=buffer)
        try:
            for dag in probe_dags():
                write_to_metadata_db(dag)
                dag_run = dag.test()
                result.states[dag.dag_id] = task_states(dag_run)
                result.run_ids[dag.dag_id] = dag_run.run_id
                result.run_states[dag.dag_id] = str(dag_run.state)
        finally:
            logs.setup_logging("json")
            toolkit.setLevel(toolkit_level)
    reinitialise_task_sdk_stats()  # back to the session's configuration (no StatsD)
    result.statsd = drain(udp)
    udp.close()
    result.log_text = buffer.getvalue()
    yield result


def test_the_outcomes_are_those_of_the_dags_even_though_the_traces_sink_raises_on_every_event(runs: Runs) -> None:
    assert runs.states["obs_listener_probe"] == {
        "succeeds": "success",
        "fails_once": "success",
        "always_fails": "failed",
        "skips": "skipped",
    }
    assert runs.run_states == {"obs_listener_probe": "failed", "obs_listener_probe_ok": "success"}
    failures = [line for line in runs.log_lines() if line["level"] == "WARNING" and "sink failed" in line["message"]]
    assert [line["message"].split(" (")[0] for line in failures] == ["observability traces sink failed"]


def test_every_try_and_every_run_reaches_the_sinks_with_its_state(runs: Runs) -> None:
    tries = sorted((e.task_id, e.try_number, e.state) for e in runs.traced if hasattr(e, "task_id"))
    assert tries == [
        ("always_fails", 1, "failed"),
        ("always_fails", 1, "running"),
        ("fails_once", 1, "running"),
        ("fails_once", 1, "up_for_retry"),
        ("fails_once", 2, "running"),
        ("fails_once", 2, "success"),
        ("only_task", 1, "running"),
        ("only_task", 1, "success"),
        ("skips", 1, "running"),
        ("skips", 1, "skipped"),
        ("succeeds", 1, "running"),
        ("succeeds", 1, "success"),
    ]
    # dag.test() fires the run's final hook in-process; on_dag_run_running only fires in the scheduler.
    finished_runs = {(e.dag_id, e.state) for e in runs.traced if not hasattr(e, "task_id")}
    assert finished_runs == {("obs_listener_probe", "failed"), ("obs_listener_probe_ok", "success")}
    assert {(e.owner, e.team) for e in runs.traced} == {(OWNER, TEAM)}


def our_statsd_lines(runs: Runs) -> list[tuple[str, dict[str, str], str]]:
    parsed = [parse_line(line) for line in runs.statsd if line.startswith(f"airflow.{metrics.PREFIX}.")]
    return [(line.name.removeprefix("airflow."), line.tags, line.statsd_type) for line in parsed]


def test_metrics_go_out_through_airflows_statsd_with_dag_task_state_owner_and_team_tags(runs: Runs) -> None:
    tags = {"dag_id": "obs_listener_probe", "owner": OWNER, "team": TEAM}
    counted = sorted(
        (name, line_tags.get("task_id", ""), line_tags.get("state", ""))
        for name, line_tags, kind in our_statsd_lines(runs)
        if kind == "c" and line_tags["dag_id"] == "obs_listener_probe"
    )
    assert counted == sorted(
        [
            *[(metrics.TASK_STARTED, t, "") for t in ("succeeds", "fails_once", "fails_once", "always_fails", "skips")],
            (metrics.TASK_FINISHED, "succeeds", "success"),
            (metrics.TASK_FINISHED, "fails_once", "up_for_retry"),
            (metrics.TASK_RETRIES, "fails_once", ""),
            (metrics.TASK_FINISHED, "fails_once", "success"),
            (metrics.TASK_FINISHED, "always_fails", "failed"),
            (metrics.TASK_FINISHED, "skips", "skipped"),
            (metrics.DAG_RUN_FINISHED, "", "failed"),
        ]
    )
    timed = {(name, line_tags.get("state")) for name, line_tags, kind in our_statsd_lines(runs) if kind == "ms"}
    assert (metrics.TASK_DURATION, "up_for_retry") in timed
    assert (metrics.DAG_RUN_DURATION, "failed") in timed and (metrics.DAG_RUN_DURATION, "success") in timed
    for _, line_tags, _ in our_statsd_lines(runs):
        assert {key: line_tags[key] for key in ("owner", "team")} == {"owner": OWNER, "team": TEAM}
        assert set(line_tags) <= {*tags, "task_id", "state", "run_type"}  # never a run id or try number


def test_our_captured_statsd_lines_never_land_on_an_airflow_family(runs: Runs) -> None:
    mappings = load_mappings()
    ours = [line for line in runs.statsd if line.startswith(f"airflow.{metrics.PREFIX}.")]

    assert ours
    for line in ours:
        mapped = map_line(mappings, parse_line(line))
        assert mapped.name.startswith((UNMAPPED_METRIC_PREFIX, "airflow_obs_task_", "airflow_obs_dag_run_")), line


def test_each_event_is_one_json_line_with_dag_task_and_trace_ids(runs: Runs) -> None:
    lines = runs.event_lines()
    run_id = runs.run_ids["obs_listener_probe"]
    trace_id = tracing.trace_id_for_run(dag_id="obs_listener_probe", run_id=run_id)

    retried = [line for line in lines if line["task_id"] == "fails_once"]
    assert [(line["try_number"], line["state"], line["level"]) for line in retried] == [
        (1, "running", "INFO"),
        (1, "up_for_retry", "WARNING"),
        (2, "running", "INFO"),
        (2, "success", "INFO"),
    ]
    for line in retried:
        assert (line["dag_id"], line["run_id"], line["trace_id"]) == ("obs_listener_probe", run_id, trace_id)
        assert line["span_id"] == tracing.span_id_for_try(
            dag_id="obs_listener_probe",
            run_id=run_id,
            task_id="fails_once",
            map_index=-1,
            try_number=line["try_number"],
        )
    (run_line,) = [line for line in lines if line["dag_id"] == "obs_listener_probe" and line["task_id"] == ""]
    assert (run_line["state"], run_line["level"], run_line["trace_id"]) == ("failed", "ERROR", trace_id)


def test_a_line_a_task_logs_through_a_toolkit_logger_carries_the_tries_ids(runs: Runs) -> None:
    (line,) = [line for line in runs.log_lines() if line["logger"] == "airflow_obs.probe"]
    assert (line["message"], line["dag_id"], line["task_id"], line["try_number"]) == (
        "working inside the try",
        "obs_listener_probe",
        "succeeds",
        1,
    )
    assert line["trace_id"] and line["span_id"]


def test_a_secret_in_a_tasks_exception_is_redacted_in_our_log_lines(runs: Runs) -> None:
    (failed,) = [line for line in runs.event_lines() if line["task_id"] == "always_fails" and line["state"] == "failed"]

    assert MASKED_SECRET not in runs.log_text and URL_PASSWORD not in runs.log_text
    assert failed["error"].startswith("RuntimeError: login refused ([redacted]) at postgresql://[redacted]@")
