"""Time from fault to first notification, per fault-injection scenario, on a real local stack.

Starts `make up` in a private folder on free ports with compressed thresholds and fast Alertmanager timings
(the tests' settings), runs each scenario (local_stack.incidents) and measures from the moment the fault is in
place (inject returned) to the first notification reaching any capture. The pipeline's own share is what is left
after the condition's inherent delay and the alert's `for`: it should stay within scrape + evaluation + group_wait
(+ the exporter's snapshot cache), plus 10%.

    python -m bench.incident_bench [--write-docs] [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from airflow_obs.alerting.thresholds import resolve, seconds

from bench.docs_section import DOCS, write_section
from bench.private_stack import private_stack
from local_stack.incidents.client import StackClient
from local_stack.incidents.runner import Report, run_scenario, wait_until_quiet
from local_stack.incidents.scenarios import COMPRESSED_THRESHOLDS, SCENARIOS

SCRAPE_SECONDS = 2.0
GROUP_WAIT_SECONDS = 1.0
SNAPSHOT_CACHE_SECONDS = 5.0  # the exporter's default snapshot_cache_seconds
FAST = {
    "AIRFLOW_OBS_SCRAPE_INTERVAL": f"{SCRAPE_SECONDS:g}s",
    "AIRFLOW_OBS_ALERTMANAGER_GROUP_WAIT": f"{GROUP_WAIT_SECONDS:g}s",
    "AIRFLOW_OBS_ALERTMANAGER_GROUP_INTERVAL": "5s",
    "AIRFLOW_OBS_ALERTMANAGER_REPEAT_INTERVAL": "1h",
}
# How long a fault takes to become the alert's condition, from the moment it is in place (before any `for`).
# Asked while the fault is still in place, so a delay can read what Airflow recorded about it.
Delay = Callable[[dict[str, str], Report, StackClient], float]


def _after(threshold: str) -> Delay:
    return lambda thresholds, report, client: _seconds(thresholds[threshold])


def _immediate(thresholds: dict[str, str], report: Report, client: StackClient) -> float:
    return 0.0


def _until_heartbeat_stale(thresholds: dict[str, str], report: Report, client: StackClient) -> float:
    """The stale threshold counts from the killed scheduler's last heartbeat, which Airflow still reports."""
    health = client.api("GET", "/monitor/health")
    last = datetime.fromisoformat(health["scheduler"]["latest_scheduler_heartbeat"]).timestamp()
    return max(0.0, last + _seconds(thresholds["component_heartbeat_stale"]) - report.injected_at.timestamp())


def _until_import_error_recorded(thresholds: dict[str, str], report: Report, client: StackClient) -> float:
    """The dag-processor finds a new file at its next directory listing (refresh_interval): Airflow stamps the error."""
    errors = client.api("GET", "/importErrors?limit=100")["import_errors"]
    stamps = [error["timestamp"] for error in errors if error["filename"].endswith(Path(report.context["file"]).name)]
    if not stamps:
        raise RuntimeError(f"Airflow records no import error for {report.context['file']} while the alert fires")
    return max(0.0, datetime.fromisoformat(max(stamps)).timestamp() - report.injected_at.timestamp())


def _until_late(thresholds: dict[str, str], report: Report, client: StackClient) -> float:
    """The missed run's due time, then the lateness threshold."""
    due_in = max(0.0, report.context["due_at"] - report.injected_at.timestamp())
    return due_in + _seconds(thresholds["schedule_lateness"])


def _until_over_baseline(thresholds: dict[str, str], report: Report, client: StackClient) -> float:
    """The slow run must be both factor x the learned p95 and the minimum runtime old (counted from its start)."""
    over = float(thresholds["baseline_factor"]) * report.context["baseline_p95_seconds"]
    return max(over, _seconds(thresholds["baseline_min_runtime"]))


# Scenario -> (the condition's own delay, the alert's `for` threshold).
DELAYS: dict[str, tuple[Delay, str | None]] = {
    "scheduler_killed": (_until_heartbeat_stale, "component_down_for"),
    "pool_saturated": (_immediate, "pool_saturated_for"),
    "tasks_stuck_queued": (_after("queued_too_long"), None),
    "import_error": (_until_import_error_recorded, "import_errors_for"),
    "missed_schedule": (_until_late, None),
    "run_far_over_baseline": (_until_over_baseline, None),
}


def _seconds(duration: str | None) -> float:
    return float(seconds(duration)) if duration else 0.0


def run(names: list[str]) -> list[dict]:
    thresholds = resolve(COMPRESSED_THRESHOLDS)
    rows = []
    with private_stack("airflow-obs-incident-bench-", {**COMPRESSED_THRESHOLDS, **FAST}) as (settings, _):
        for name in names:
            wait_until_quiet(settings, SCENARIOS[name], timeout=420)
            time.sleep(8)
            scenario, client = SCENARIOS[name], StackClient(settings)
            report = run_scenario(settings, scenario, fire_timeout=420, recover=False)
            try:
                delay, for_key = DELAYS[name]
                inherent = delay(thresholds, report, client)
            finally:
                scenario.recover(client, report.context)
            hold = _seconds(thresholds.get(for_key)) if for_key else 0.0
            measured = report.first_notification_seconds() or float("nan")
            rows.append(
                {
                    "scenario": name,
                    "alert": ", ".join(SCENARIOS[name].alerts),
                    "measured": measured,
                    "inherent": inherent,
                    "for": hold,
                    "pipeline": measured - inherent - hold,
                }
            )
            print(rows[-1], flush=True)
    return rows


NOTES = (
    "The condition's own delay is counted from the moment the fault is in place: for a killed scheduler, from its "
    "last heartbeat as Airflow reports it; for a broken DAG file, until the dag-processor records the import error "
    "(it lists the folder every 30 s). A slow run's age counts from its start, a second or two after the trigger, "
    "which its pipeline share includes.",
    "Rerun: `make bench`, or `.venv/bin/python -m bench.incident_bench --scenario NAME` for one scenario.",
)


def render(rows: list[dict]) -> str:
    budget = SCRAPE_SECONDS * 2 + GROUP_WAIT_SECONDS + SNAPSHOT_CACHE_SECONDS
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on 2 cores: scrape and evaluation every {SCRAPE_SECONDS:g} s, "
        f"group_wait {GROUP_WAIT_SECONDS:g} s, exporter snapshot cache {SNAPSHOT_CACHE_SECONDS:g} s: pipeline "
        f"budget {budget:g} s (+10% = {budget * 1.1:.1f} s).",
        "",
        "| scenario | alert | fault → first notification | condition's own delay | `for` | pipeline share "
        "| within budget +10% |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ok = "yes" if row["pipeline"] <= budget * 1.1 else "no"
        lines.append(
            f"| {row['scenario']} | {row['alert']} | {row['measured']:.1f} s | {row['inherent']:.1f} s "
            f"| {row['for']:g} s | {row['pipeline']:.1f} s | {ok} |"
        )
    lines += ["", *NOTES]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(DELAYS), help="default: all timed ones")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the incident part of {DOCS.name}")
    args = parser.parse_args(argv)
    section = render(run(args.scenario or list(DELAYS)))
    print(section)
    if args.write_docs:
        write_section("incident-bench", section)


if __name__ == "__main__":
    main()
