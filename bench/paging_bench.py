"""Time from a task's final failure to the first Slack message about it: through Alertmanager, and without it.

A private `make up` with the stack's default intervals (Alertmanager's timings as committed: the plugin's
route waits `group_wait` 2 s). A bench DAG file, written into dags/ for the run and deleted after, holds one task
that fails at once with no retry, with an error of its own per run: each failure is a cause of its own (its own
error fingerprint, so its own Alertmanager group), as unrelated failures are. FAILURES failures, BATCH at a time;
then Alertmanager is stopped and as many go through the plugin's direct fallback to the sinks.

Latency of one failure = the Slack capture's receipt of the first message naming its run - the moment the task
raised, which its error carries ("raised at <unix time>"; same clock, one machine). Not the try's end_date: the task
runner records that after the failure listener has run, so it can come after the page.

    python -m bench.paging_bench [--write-docs] [--failures N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import quote

from bench.docs_section import DOCS, write_section
from bench.private_stack import private_stack
from bench.stats import latency_summary
from local_stack.captures.recorder import read_records
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.settings import REPO_ROOT, StackSettings

FAILURES = 20
BATCH = 4
BENCH_DAG = "zz_bench_paging"
BENCH_TASK = "fail_now"
BENCH_DAG_FILE = REPO_ROOT / "dags" / f"{BENCH_DAG}.py"
TARGETS = {"p50": 5.0, "p95": 10.0}  # seconds, through Alertmanager
DAG_SOURCE = textwrap.dedent(
    f'''\
    """Written by bench/paging_bench.py for its run and deleted after: fails at once, with an error of its own."""
    import time
    from datetime import datetime

    from airflow.sdk import DAG, get_current_context, task

    with DAG("{BENCH_DAG}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs={BATCH},
             tags=["bench", "team:data-platform"], default_args={{"owner": "bench"}}):

        @task(retries=0)
        def {BENCH_TASK}() -> None:
            cause = get_current_context()["dag_run"].conf["cause"]
            raise RuntimeError(f"bench failure {{cause}} raised at {{time.time():.3f}}")

        {BENCH_TASK}()
    '''
)


@contextmanager
def bench_dag() -> Iterator[None]:
    BENCH_DAG_FILE.write_text(DAG_SOURCE)
    try:
        yield
    finally:
        BENCH_DAG_FILE.unlink(missing_ok=True)


def wait_registered(client: StackClient, timeout: float = 180.0) -> None:
    """Until the dag-processor has parsed the file (it lists dags/ every 30 s) and the DAG can be triggered."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.api("GET", f"/dags/{BENCH_DAG}")
            return
        except IncidentError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def a_cause() -> str:
    """Letters only: the error fingerprint keeps letters and replaces numbers and ids, so each run is a new cause."""
    return "".join(random.choices(string.ascii_lowercase, k=16))  # noqa: S311 - not a secret


RAISED_AT = re.compile(r"raised at (\d+\.\d+)")


def first_slack_message(settings: StackSettings, run_id: str, since: datetime) -> float | None:
    """Seconds from the task's raise to the first Slack message naming its run (None: none yet)."""
    needles = (run_id, quote(run_id, safe=""))
    latencies = []
    for record in read_records(settings.capture_file("slack")):
        received, text = datetime.fromisoformat(record["received_at"]), json.dumps(record)
        if received >= since and any(needle in text for needle in needles) and (raised := RAISED_AT.search(text)):
            latencies.append(received.timestamp() - float(raised[1]))
    return min(latencies) if latencies else None


def fail_and_time(settings: StackSettings, client: StackClient, count: int) -> list[float]:
    """`count` failures, BATCH at a time; the latency of each, in seconds."""
    latencies: list[float] = []
    while len(latencies) < count:
        since = datetime.now(UTC)
        runs = [client.trigger(BENCH_DAG, {"cause": a_cause()}) for _ in range(min(BATCH, count - len(latencies)))]
        for run_id in runs:
            if client.wait_for_run(BENCH_DAG, run_id, timeout=180) != "failed":
                raise RuntimeError(f"bench run {run_id} did not fail")
            deadline = time.monotonic() + 60
            while (latency := first_slack_message(settings, run_id, since)) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no Slack message about {run_id} within 60 s of its failure")
                time.sleep(0.2)
            latencies.append(latency)
            print(f"{run_id}: {latencies[-1]:.2f} s", flush=True)
    return latencies


def run(failures: int) -> dict[str, dict[str, float]]:
    with private_stack("airflow-obs-paging-bench-", {}) as (settings, _), bench_dag():
        client = StackClient(settings)
        wait_registered(client)
        routed = fail_and_time(settings, client, failures)
        client.kill_program("alertmanager")
        try:
            direct = fail_and_time(settings, client, failures)
        finally:
            client.start_program("alertmanager")
    return {
        "through Alertmanager": latency_summary(routed),
        "Alertmanager down: direct to the sinks": latency_summary(direct),
    }


def render(results: dict[str, dict[str, float]]) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on 2 cores, `make up`'s default intervals (the plugin's route: "
        "group_wait 2 s), each failure a cause of its own, up to "
        f"{BATCH} failing at once. From the task's raise to the Slack capture's receipt of the first message.",
        "",
        "| path | failures | p50 | p95 | max | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for path, row in results.items():
        target = f"p50 < {TARGETS['p50']:g} s, p95 < {TARGETS['p95']:g} s"
        met = row["p50"] < TARGETS["p50"] and row["p95"] < TARGETS["p95"]
        lines.append(
            f"| {path} | {row['n']:.0f} | {row['p50']:.2f} s | {row['p95']:.2f} s | {row['max']:.2f} s "
            f"| {target}: {'met' if met else 'missed'} |"
        )
    lines += ["", "Rerun: `make bench`, or `.venv/bin/python -m bench.paging_bench --failures 20`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=FAILURES, help=f"per path (default {FAILURES})")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the paging part of {DOCS.name}")
    args = parser.parse_args(argv)
    if args.failures < 1:
        parser.error(f"--failures {args.failures}: expected at least 1")
    section = render(run(args.failures))
    print(section)
    if args.write_docs:
        write_section("paging-bench", section)


if __name__ == "__main__":
    main()
