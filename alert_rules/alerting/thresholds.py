"""Every number an alert compares against, in one place, with what it means and why it has that default.

The committed rule files use the defaults. A deployment renders its own copy (`render.render_rule_files`)
where `AIRFLOW_OBS_ALERT_<NAME>` overrides any of them: the local stack does, and the fault-injection
harness compresses time that way (a "failing for an hour" alert after a minute).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "AIRFLOW_OBS_ALERT_"


class ThresholdError(ValueError):
    """A threshold override that is not a usable value; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Threshold:
    default: str
    kind: str  # "duration" (a Prometheus duration such as 90s, 15m, 1h) or "number"
    meaning: str


THRESHOLDS: dict[str, Threshold] = {
    # Components: Airflow's jobs heartbeat every 5 s; a minute of silence is not a hiccup.
    "component_heartbeat_stale": Threshold(
        "60s", "duration", "age of a component's latest heartbeat that means it is down"
    ),
    "component_down_for": Threshold("1m", "duration", "how long a component must look down before paging"),
    "metadata_db_down_for": Threshold("1m", "duration", "how long the exporter must fail to reach the metadata DB"),
    "exporter_down_for": Threshold("2m", "duration", "how long Prometheus must fail to scrape the exporter"),
    # DAG outcomes.
    "dag_failed_for": Threshold("1m", "duration", "how long a DAG's latest run must stay failed before the warning"),
    "dag_failing_window": Threshold("1h", "duration", "a DAG failing this long with no success pages"),
    # The failing streak itself is the alert's `for`; this only catches a success the last-run gauge missed
    # (a success and a failure between two scrapes), so it is a few scrapes long, not the whole window.
    "dag_success_grace": Threshold("5m", "duration", "a success this recent stops the failing-for-an-hour alert"),
    "task_failures_window": Threshold("1h", "duration", "window in which a task's failures are counted"),
    "task_failures_count": Threshold("3", "number", "failed tries of one task in that window that mean 'repeatedly'"),
    "task_retries_window": Threshold("1h", "duration", "window in which a DAG's retries are counted"),
    "task_retries_count": Threshold("5", "number", "retries of one DAG in that window worth a digest line"),
    # Freshness and duration.
    "schedule_lateness": Threshold("15m", "duration", "how late a scheduled run may be before the DAG counts as stale"),
    "baseline_factor": Threshold("3", "number", "a running run this many times its learned p95 is far over baseline"),
    "baseline_min_runtime": Threshold("10m", "duration", "and it must have run at least this long (short DAGs jitter)"),
    "deadline_window": Threshold("15m", "duration", "window in which a missed Deadline Alert keeps firing"),
    # Live work.
    "queued_too_long": Threshold("10m", "duration", "how long the oldest queued task may wait for a worker"),
    "pool_saturated_for": Threshold("10m", "duration", "how long a pool may have no open slot while work waits"),
    "heartbeat_lost_for": Threshold("2m", "duration", "how long running tasks may stay without a heartbeat"),
    "import_errors_for": Threshold("2m", "duration", "how long a DAG file may fail to import before the warning"),
    # Celery workers: a lost worker is recent news; after this window it is simply gone (or scaled in).
    "celery_worker_lost_window": Threshold(
        "1h", "duration", "how long after a worker vanished the alert keeps firing, unless it comes back"
    ),
    # PostgreSQL and the host.
    "postgres_connections_ratio": Threshold("0.8", "number", "share of max_connections in use that is near the limit"),
    "host_cpu_busy_ratio": Threshold("0.9", "number", "share of CPU time busy, over 5 minutes"),
    "host_memory_available_ratio": Threshold("0.1", "number", "share of memory still available below which we warn"),
    "host_disk_available_ratio": Threshold("0.1", "number", "share of a filesystem still free below which we warn"),
    "host_for": Threshold("10m", "duration", "how long a host condition must last"),
    "alertmanager_failing_for": Threshold("5m", "duration", "how long Alertmanager may fail to deliver notifications"),
}

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _check(name: str, raw: str, kind: str, source: str) -> str:
    value = raw.strip()
    if kind == "duration":
        if not _DURATION.match(value):
            raise ThresholdError(f"{source}={raw!r}: expected a Prometheus duration such as 90s, 15m or 1h")
        return value
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ThresholdError(f"{source}={raw!r}: expected a number > 0")
    return value


def resolve(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Every threshold's value: the default, or its AIRFLOW_OBS_ALERT_<NAME> override (checked)."""
    unknown = sorted(
        key for key in environ if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() not in THRESHOLDS
    )
    if unknown:
        raise ThresholdError(
            f"{unknown[0]}: no such alert threshold; expected one of {', '.join(env_var(n) for n in THRESHOLDS)}"
        )
    values = {}
    for name, threshold in THRESHOLDS.items():
        source = env_var(name)
        raw = environ.get(source)
        values[name] = threshold.default if raw is None else _check(name, raw, threshold.kind, source)
    return values


def env_var(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> str:
    """A Prometheus duration (as `resolve` checked it) in seconds, to compare with a gauge in seconds."""
    total = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(duration))
    return f"{total:g}"
