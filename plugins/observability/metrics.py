"""Task tries and DAG runs as metrics, sent through Airflow's own Stats client.

Airflow's Stats follows the deployment's `[metrics]` configuration (StatsD, with InfluxDB-style tags when
`statsd_influxdb_enabled`, or OpenTelemetry), so these metrics go wherever Airflow's own go, with its
allow/block lists and its StatsD prefix in front (`airflow.` by default). The Task SDK's copy of Stats is
the one to use in every process: Airflow initialises it from the configuration when `airflow.sdk` is
imported, and the task runner again at start-up.

Names live under `obs.`, apart from Airflow's metric names, from the `airflow_*` families the toolkit's
Prometheus exporter serves and from the DAG suite's own `airflow_obs.stack_health.*`. Tags are bounded:
never run ids, try numbers or host names.
"""

from __future__ import annotations

import re

from airflow_obs.observability.compat import Stats
from airflow_obs.observability.events import DagRunEvent, TaskEvent

PREFIX = "obs"

TASK_STARTED = f"{PREFIX}.task.started"
TASK_FINISHED = f"{PREFIX}.task.finished"
TASK_RETRIES = f"{PREFIX}.task.retries"
TASK_DURATION = f"{PREFIX}.task.duration"
TASK_QUEUED_DURATION = f"{PREFIX}.task.queued_duration"
DAG_RUN_STARTED = f"{PREFIX}.dag_run.started"
DAG_RUN_FINISHED = f"{PREFIX}.dag_run.finished"
DAG_RUN_DURATION = f"{PREFIX}.dag_run.duration"

TASK_TAGS = ("dag_id", "task_id", "owner", "team")
DAG_RUN_TAGS = ("dag_id", "run_type", "owner", "team")

# name -> (type, tags, meaning). docs/plugin.md lists the same names (a test checks).
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    TASK_STARTED: ("counter", TASK_TAGS, "task tries that started running"),
    TASK_FINISHED: ("counter", (*TASK_TAGS, "state"), "task tries that ended: success, failed, up_for_retry, skipped"),
    TASK_RETRIES: ("counter", TASK_TAGS, "failed tries that Airflow will retry"),
    TASK_DURATION: ("timer", (*TASK_TAGS, "state"), "run time of a try, start to end"),
    TASK_QUEUED_DURATION: ("timer", TASK_TAGS, "queued to running, when the task instance carries queued_dttm"),
    DAG_RUN_STARTED: ("counter", DAG_RUN_TAGS, "DAG runs that started running"),
    DAG_RUN_FINISHED: ("counter", (*DAG_RUN_TAGS, "state"), "DAG runs that ended: success, failed"),
    DAG_RUN_DURATION: ("timer", (*DAG_RUN_TAGS, "state"), "run time of a DAG run, start to end"),
}

# The outcomes a task try or DAG run ends with; "running" starts one. Other states are not counted.
TASK_OUTCOMES = frozenset({"success", "failed", "up_for_retry", "skipped"})
DAG_RUN_OUTCOMES = frozenset({"success", "failed"})

NO_VALUE = "none"
# StatsD InfluxDB tags cannot hold `,` or `=` (Airflow drops such a tag) and a space ends the name: owners
# are free text ("alice, bob"), so every value is reduced to the characters Airflow allows in ids.
_UNSAFE_TAG_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]+")


def tag_value(value: object) -> str:
    """A tag value every backend accepts; an empty value becomes `none` so each series has every tag."""
    text = _UNSAFE_TAG_CHARACTERS.sub("_", str(value or "")).strip("_")
    return text or NO_VALUE


def task_tags(event: TaskEvent) -> dict[str, str]:
    return {
        "dag_id": tag_value(event.dag_id),
        "task_id": tag_value(event.task_id),
        "owner": tag_value(event.owner),
        "team": tag_value(event.team),
    }


def dag_run_tags(event: DagRunEvent) -> dict[str, str]:
    return {
        "dag_id": tag_value(event.dag_id),
        "run_type": tag_value(event.run_type),
        "owner": tag_value(event.owner),
        "team": tag_value(event.team),
    }


def record_task_event(event: TaskEvent) -> None:
    """Count a try that started or ended, and time it (durations in milliseconds, as Airflow's own timers)."""
    tags = task_tags(event)
    if event.state == "running":
        Stats.incr(TASK_STARTED, tags=tags)
        if event.queued_seconds is not None:
            Stats.timing(TASK_QUEUED_DURATION, event.queued_seconds * 1000.0, tags=tags)
        return
    if event.state not in TASK_OUTCOMES:
        return
    ended = {**tags, "state": tag_value(event.state)}
    Stats.incr(TASK_FINISHED, tags=ended)
    if event.will_retry:
        Stats.incr(TASK_RETRIES, tags=tags)
    if event.duration_seconds is not None:
        Stats.timing(TASK_DURATION, event.duration_seconds * 1000.0, tags=ended)


def record_dag_run_event(event: DagRunEvent) -> None:
    """Count a DAG run that started or ended, and time the ones that ended."""
    tags = dag_run_tags(event)
    if event.state == "running":
        Stats.incr(DAG_RUN_STARTED, tags=tags)
        return
    if event.state not in DAG_RUN_OUTCOMES:
        return
    ended = {**tags, "state": tag_value(event.state)}
    Stats.incr(DAG_RUN_FINISHED, tags=ended)
    if event.duration_seconds is not None:
        Stats.timing(DAG_RUN_DURATION, event.duration_seconds * 1000.0, tags=ended)
