"""How long the on-call console takes to open on the embedded stack: the api-server's answer, and the whole page in
a browser (Chart.js drawn, every resource loaded).

A private `make up` with its defaults. First a failure that pages (the demo fault switch fails
maintenance_audit's check_config_drift for good), so the pages have an alert, runs, a failed task and a trace to
show. Then each page is opened LOADS times, signed in as the read-only `oncall` account: by the API client (time to
the last byte) and by chromium (navigation start to the load event). The first request builds the console's app
in the api-server (it is imported lazily): it is reported on its own, not in the percentiles.

    python -m bench.console_bench [--write-docs] [--loads N]
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bench.docs_section import DOCS, write_section
from bench.private_stack import private_stack
from bench.stats import latency_summary
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.incidents.task_failures import FAILING_DAG, FAILING_TASK

LOADS = 20
TARGET_SECONDS = 1.0
CHROMIUM = "/usr/bin/chromium"


def served_seconds(url: str, token: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    started = time.perf_counter()
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
        response.read()
        if response.status != 200:
            raise IncidentError(f"{url} answered HTTP {response.status}")
    return time.perf_counter() - started


def browser_seconds(urls: dict[str, str], token: str, loads: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {name: [] for name in urls}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            # The UI's session cookie, for every path of the api-server (as Airflow's login sets it).
            host = urlsplit(next(iter(urls.values()))).hostname
            context.add_cookies([{"name": "_token", "value": token, "domain": host, "path": "/"}])
            page = context.new_page()
            for _ in range(loads):
                for name, url in urls.items():
                    page.goto(url, wait_until="load")
                    timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
                    entry = json.loads(timing)
                    found[name].append((entry["loadEventEnd"] - entry["startTime"]) / 1000)
        finally:
            browser.close()
    return found


def run(loads: int) -> dict:
    with private_stack("airflow-obs-console-bench-", {}) as (settings, _):
        client = StackClient(settings)
        run_id = client.trigger(FAILING_DAG, {"demo_fault_task": FAILING_TASK, "demo_fault_mode": "fail"})
        if client.wait_for_run(FAILING_DAG, run_id) != "failed":
            raise IncidentError(f"{FAILING_DAG} run {run_id} did not fail; the fault switch should fail it")
        airflow = settings.url("airflow")
        urls = {
            "a DAG's page": f"{airflow}/observability/dags/{FAILING_DAG}/monitoring",
            "the On-call page": f"{airflow}/observability/console",
        }
        token = StackClient(settings, user="oncall").token()
        cold = {name: served_seconds(url, token) for name, url in urls.items()}
        served = {name: [served_seconds(url, token) for _ in range(loads)] for name, url in urls.items()}
        loaded = browser_seconds(urls, token, loads)
    return {
        "cold": cold,
        "served": {name: latency_summary(samples) for name, samples in served.items()},
        "loaded": {name: latency_summary(samples) for name, samples in loaded.items()},
    }


def render(results: dict) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on 2 cores, a private `make up` stack (SQLite, its DAG suite running) "
        "after one failure paged; signed in as `oncall`.",
        "",
        "| page | served: p50 | p95 | in chromium, to the load event: p50 | p95 | first request (builds the app) "
        "| target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, served in results["served"].items():
        loaded = results["loaded"][name]
        met = loaded["p95"] < TARGET_SECONDS
        lines.append(
            f"| {name} | {served['p50'] * 1000:.0f} ms | {served['p95'] * 1000:.0f} ms | {loaded['p50'] * 1000:.0f} ms "
            f"| {loaded['p95'] * 1000:.0f} ms | {results['cold'][name] * 1000:.0f} ms "
            f"| loads in < {TARGET_SECONDS:g} s: {'met' if met else 'missed'} |"
        )
    lines += ["", "Rerun: `make bench`, or `.venv/bin/python -m bench.console_bench --loads 20`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=LOADS, help=f"loads of each page (default {LOADS})")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the console part of {DOCS.name}")
    args = parser.parse_args(argv)
    if args.loads < 1:
        parser.error(f"--loads {args.loads}: expected at least 1")
    section = render(run(args.loads))
    print(section)
    if args.write_docs:
        write_section("console-bench", section)


if __name__ == "__main__":
    main()
