"""Task throughput of the Celery stack with one and with two workers, on this machine.

Starts `AIRFLOW_OBS_EXECUTOR=celery` in a private folder, pauses the DAG suite and ends the runs it started, then
adds one DAG for the measurement (written to dags/ for the run and deleted after): TASKS mapped tasks, each
waiting WORK_SECONDS as a task waiting on a database or an API does. Each trial triggers one run and reads from
Airflow's own records how long the TASKS took, from the first queued to the last finished: tasks per minute.
Trials alternate two workers and one (the second stopped gracefully), REPEATS times.

    python -m bench.scaling_bench [--write-docs] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psutil

from bench.docs_section import write_section
from bench.private_stack import private_stack
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.programs import celery_workers
from local_stack.settings import REPO_ROOT, StackSettings
from local_stack.supervisor_control import rpc

SCALING_DOC = REPO_ROOT / "docs" / "scaling.md"
DAG_ID = "bench_celery_throughput"
DAG_FILE = REPO_ROOT / "dags" / f"zz_{DAG_ID}.py"
TASKS = 48
WORK_SECONDS = 2
PARALLELISM = 8  # the stack's default: each of the two workers runs 4 tasks at once
DAG_SOURCE = f'''"""Written by bench/scaling_bench.py for one measurement, deleted after it; not part of the suite."""

import time
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks={TASKS},
     tags=["bench"])
def bench_celery_throughput():
    @task
    def unit_of_work(number: int) -> int:
        time.sleep({WORK_SECONDS})
        return number

    unit_of_work.expand(number=list(range({TASKS})))


bench_celery_throughput()
'''


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _wait(what: str, condition, timeout: float, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise IncidentError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
    return result


def quiet_the_suite(client: StackClient) -> None:
    """Pause every suite DAG and fail the runs they already started, so only the measured work runs."""
    for dag in client.api("GET", "/dags?limit=100")["dags"]:
        client.api("PATCH", f"/dags/{dag['dag_id']}", {"is_paused": True})
    for run in client.api("GET", "/dags/~/dagRuns?state=queued&state=running&limit=100")["dag_runs"]:
        path = f"/dags/{run['dag_id']}/dagRuns/{quote(run['dag_run_id'], safe='')}"
        client.api("PATCH", path, {"state": "failed"})
    _wait(
        "the suite's tasks to stop",
        lambda: client.api("GET", "/dags/~/dagRuns/~/taskInstances?state=running&state=queued")["total_entries"] == 0,
        timeout=180,
    )


def trial(client: StackClient, workers: int) -> dict:
    run_id = client.trigger(DAG_ID)
    state = client.wait_for_run(DAG_ID, run_id, timeout=900)
    if state != "success":
        raise IncidentError(f"the measured run {run_id} ended {state}")
    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit={TASKS + 10}"
    tis = client.api("GET", path)["task_instances"]
    if len(tis) != TASKS:
        raise IncidentError(f"the measured run has {len(tis)} task instances, expected {TASKS}")
    first_queued = min(_at(ti["queued_when"]) for ti in tis)
    last_end = max(_at(ti["end_date"]) for ti in tis)
    span = (last_end - first_queued).total_seconds()
    return {
        "workers": workers,
        "span": span,
        "per_minute": TASKS / span * 60,
        "wait": statistics.mean((_at(ti["start_date"]) - _at(ti["queued_when"])).total_seconds() for ti in tis),
        "duration": statistics.mean(ti["duration"] for ti in tis),
        "hosts": dict(Counter(ti["hostname"] for ti in tis)),
    }


def _set_second_worker(settings: StackSettings, running: bool) -> None:
    name = celery_workers(settings)[1].program
    server = rpc(settings).supervisor
    if running and server.getProcessInfo(name)["statename"] != "RUNNING":
        server.startProcess(name, True)
        time.sleep(10)  # it registers with the broker and starts consuming
    if not running and server.getProcessInfo(name)["statename"] == "RUNNING":
        server.stopProcess(name, True)  # warm shutdown: it has no task, the run before it ended


def run(repeats: int) -> list[dict]:
    rows = []
    env = {"AIRFLOW_OBS_EXECUTOR": "celery", "AIRFLOW_OBS_PARALLELISM": str(PARALLELISM)}
    with private_stack("airflow-obs-scaling-bench-", env) as (settings, _):
        client = StackClient(settings)
        quiet_the_suite(client)
        DAG_FILE.write_text(DAG_SOURCE)
        try:
            _wait("the measured DAG to be parsed", lambda: _dag_exists(client), timeout=180)
            client.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
            trial(client, 2)  # a warm-up: the first run pays for cold imports on both workers
            for _ in range(repeats):
                for workers in (2, 1):
                    _set_second_worker(settings, workers == 2)
                    rows.append(trial(client, workers))
                    print(rows[-1], flush=True)
        finally:
            DAG_FILE.unlink(missing_ok=True)
    return rows


def _dag_exists(client: StackClient) -> bool:
    try:
        client.api("GET", f"/dags/{DAG_ID}")
    except IncidentError:
        return False
    return True


def render(rows: list[dict]) -> str:
    concurrency = PARALLELISM // 2
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine ({os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, both workers on it): `AIRFLOW_OBS_EXECUTOR=celery`, "
        f"each worker running {concurrency} tasks at once, one run of {TASKS} mapped tasks that each wait "
        f"{WORK_SECONDS} s, per trial (after one warm-up run).",
        "",
        "| workers | trial | first queued → last finished | tasks per minute | mean wait in queue "
        "| mean task duration | tasks per worker |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for number, row in enumerate(rows, 1):
        hosts = ", ".join(f"{host}: {count}" for host, count in sorted(row["hosts"].items()))
        lines.append(
            f"| {row['workers']} | {number} | {row['span']:.1f} s | {row['per_minute']:.1f} | {row['wait']:.1f} s "
            f"| {row['duration']:.1f} s | {hosts} |"
        )
    lines.append("")
    for workers in (1, 2):
        rates = [row["per_minute"] for row in rows if row["workers"] == workers]
        lines.append(f"- {workers} worker{'s' if workers > 1 else ''}: median {statistics.median(rates):.1f} tasks/min")
    lines += ["", "Rerun: `.venv/bin/python -m bench.scaling_bench --write-docs` (about 10 minutes; run it alone)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="trials per worker count (default 2)")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the measured part of {SCALING_DOC.name}")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: expected at least 1")
    section = render(run(args.repeats))
    print(section)
    if args.write_docs:
        write_section("scaling-bench", section, Path(SCALING_DOC))


if __name__ == "__main__":
    main()
