"""Numbers from a window's DAG runs (as the REST API lists them): pure functions, no I/O.

- success rate per DAG: success / (success + failed); runs still queued or running are counted but not rated;
- slowest DAGs: by their longest finished run (duration in seconds), with the mean;
- failures: each failed run with the task ids that failed in it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

FINISHED = ("success", "failed")
SLOWEST_COUNT = 5


def _parse(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def run_duration(run: Mapping[str, Any]) -> float | None:
    """Seconds a run took: the API's `duration`, else end_date - start_date; None while unfinished."""
    if run.get("duration") is not None:
        return float(run["duration"])
    start, end = _parse(run.get("start_date")), _parse(run.get("end_date"))
    return (end - start).total_seconds() if start and end else None


def success_rate(by_state: Mapping[str, int]) -> float | None:
    finished = sum(by_state.get(state, 0) for state in FINISHED)
    return round(by_state.get("success", 0) / finished, 4) if finished else None


def per_dag(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per DAG, sorted by dag_id: runs, runs by state, success rate, longest and mean duration."""
    states: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for run in runs:
        states[run["dag_id"]][run["state"]] += 1
        duration = run_duration(run)
        if run["state"] in FINISHED and duration is not None:
            durations[run["dag_id"]].append((duration, run["dag_run_id"]))
    summary = []
    for dag_id in sorted(states):
        by_state = dict(sorted(states[dag_id].items()))
        timed = durations[dag_id]
        longest = max(timed) if timed else None
        summary.append(
            {
                "dag_id": dag_id,
                "runs": sum(by_state.values()),
                "by_state": by_state,
                "success_rate": success_rate(by_state),
                "max_duration_s": None if longest is None else round(longest[0], 3),
                "slowest_run_id": None if longest is None else longest[1],
                "mean_duration_s": round(sum(d for d, _ in timed) / len(timed), 3) if timed else None,
            }
        )
    return summary


def slowest_dags(dags: Iterable[Mapping[str, Any]], count: int = SLOWEST_COUNT) -> list[dict[str, Any]]:
    timed = [dag for dag in dags if dag["max_duration_s"] is not None]
    timed.sort(key=lambda dag: (-dag["max_duration_s"], dag["dag_id"]))
    keys = ("dag_id", "max_duration_s", "mean_duration_s", "slowest_run_id")
    return [{key: dag[key] for key in keys} for dag in timed[:count]]


def failures(runs: Iterable[Mapping[str, Any]], failed_tis: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Failed runs, newest first (by run_after), each with the sorted task ids that failed in it."""
    tasks: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ti in failed_tis:
        tasks[(ti["dag_id"], ti["dag_run_id"])].add(ti["task_id"])
    failed = [run for run in runs if run["state"] == "failed"]
    failed.sort(key=lambda run: (str(run.get("run_after") or ""), run["dag_id"]), reverse=True)
    return [
        {
            "dag_id": run["dag_id"],
            "run_id": run["dag_run_id"],
            "run_after": run.get("run_after"),
            "failed_tasks": sorted(tasks.get((run["dag_id"], run["dag_run_id"]), ())),
        }
        for run in failed
    ]


def totals(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    by_state = dict(sorted(Counter(run["state"] for run in runs).items()))
    return {"runs": sum(by_state.values()), "by_state": by_state, "success_rate": success_rate(by_state)}
