"""The daily status report as data: `build_report` is a pure function from runs and health rows to a StatusReport
(numbers, Markdown, PNG), so a notifier can send the same object that `write_report` puts on disk."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dag_suite.monitoring import chart, run_stats

MAX_FAILURES_LISTED = 50


@dataclass(frozen=True)
class StatusReport:
    title: str
    numbers: dict[str, Any]  # everything the Markdown says, as JSON-ready data (report.json)
    markdown: str
    png: bytes

    @property
    def failing_dags(self) -> list[str]:
        return sorted({failure["dag_id"] for failure in self.numbers["failures"]})


def build_report(
    runs: Sequence[Mapping[str, Any]],
    failed_tis: Sequence[Mapping[str, Any]],
    stack_health: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    truncated: bool = False,
) -> StatusReport:
    """Runs as GET /api/v2/dags/~/dagRuns lists them (dag_id, dag_run_id, state, duration...), failed task
    instances (dag_id, dag_run_id, task_id), stack_health summaries (health_store.summarise)."""
    dags = run_stats.per_dag(runs)
    numbers = {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "truncated": truncated,
        "totals": run_stats.totals(runs),
        "dags": dags,
        "slowest_dags": run_stats.slowest_dags(dags),
        "failures": run_stats.failures(runs, failed_tis),
        "stack_health": [dict(row) for row in stack_health],
    }
    title = f"Airflow status {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    return StatusReport(title, numbers, render_markdown(title, numbers), chart.render_png(dags, title))


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} s"


def _section(heading: str, header: Sequence[str], rows: Sequence[Sequence[Any]], if_empty: str) -> list[str]:
    lines = ["", f"## {heading}", ""]
    if not rows:
        return [*lines, if_empty]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]


def _dag_row(dag: Mapping[str, Any]) -> tuple[Any, ...]:
    states = ", ".join(f"{count} {state}" for state, count in dag["by_state"].items())
    durations = _seconds(dag["max_duration_s"]), _seconds(dag["mean_duration_s"])
    return (dag["dag_id"], dag["runs"], states, _pct(dag["success_rate"]), *durations)


def _health_row(health: Mapping[str, Any]) -> tuple[Any, ...]:
    latest = health["latest"]
    state = "healthy" if latest["healthy"] else f"UNHEALTHY: {latest['detail']}"
    latency = "n/a" if health["mean_latency_ms"] is None else f"{health['mean_latency_ms']} ms"
    counts = (_pct(health["availability"]), health["checks"], health["unhealthy_checks"], latency)
    return (health["component"], state, latest["checked_at"], *counts)


def render_markdown(title: str, numbers: Mapping[str, Any]) -> str:
    totals, failures = numbers["totals"], numbers["failures"]
    states = ", ".join(f"{count} {state}" for state, count in totals["by_state"].items()) or "none"
    lines = [
        f"# {title}",
        "",
        f"**{totals['runs']} DAG runs** ({states}); success rate {_pct(totals['success_rate'])}.",
    ]
    if numbers["truncated"]:
        lines.append("\n**Warning:** the REST API listing was cut short; the numbers are a lower bound.")
    if failures:
        lines.append(f"\n**Failing DAGs:** {', '.join(sorted({f['dag_id'] for f in failures}))}")
    lines += ["", "![runs by state and longest run per DAG](report.png)"]
    lines += _section(
        "Success rate per DAG",
        ("DAG", "runs", "by state", "success rate", "longest run", "mean run"),
        [_dag_row(dag) for dag in numbers["dags"]],
        "No DAG runs in this window.",
    )
    lines += _section(
        "Slowest DAGs",
        ("DAG", "longest run", "mean run", "run id"),
        [
            (d["dag_id"], _seconds(d["max_duration_s"]), _seconds(d["mean_duration_s"]), d["slowest_run_id"])
            for d in numbers["slowest_dags"]
        ],
        "No finished runs.",
    )
    lines += _section(
        "Failures",
        ("DAG", "run id", "failed tasks"),
        [(f["dag_id"], f["run_id"], ", ".join(f["failed_tasks"]) or "-") for f in failures[:MAX_FAILURES_LISTED]],
        "No failed runs.",
    )
    if len(failures) > MAX_FAILURES_LISTED:
        lines.append(f"\n...and {len(failures) - MAX_FAILURES_LISTED} more (report.json has them all).")
    lines += _section(
        "Stack health",
        ("component", "latest", "checked at", "availability", "checks", "unhealthy", "mean latency"),
        [_health_row(health) for health in numbers["stack_health"]],
        "No stack_health rows yet (has monitoring_stack_health run?).",
    )
    return "\n".join(lines) + "\n"


def write_report(report: StatusReport, folder: Path) -> dict[str, str]:
    """report.md, report.png and report.json in `folder`; returns their paths."""
    paths = {"markdown": folder / "report.md", "png": folder / "report.png", "json": folder / "report.json"}
    paths["markdown"].write_text(report.markdown, encoding="utf-8")
    paths["png"].write_bytes(report.png)
    paths["json"].write_text(json.dumps(report.numbers, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {kind: str(path) for kind, path in paths.items()}
