"""`make bench`: the scrape cost of our exporter against the naive all-time GROUP BY baseline, as history deepens.

For each size: load a synthetic history into its own PostgreSQL database, start both exporters on loopback,
scrape each once to warm up (ours positions its cursors then), then time N scrapes of /metrics client-side.
Reports median and p95 scrape time, each collector's median duration, peak RSS and series count, and with
--write-docs rewrites the generated part of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import asset_graph_bench
from bench.docs_section import DOCS, markers, write_section
from bench.stats import nearest_rank
from bench.synthetic_history import load_synthetic_history
from local_stack.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
START_MARKER, END_MARKER = markers("exporter-bench")
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
DEFAULT_SCRAPES = 40
NAIVE_SCRAPES = 10
DAGS = 1000
# The targets, for our exporter: p95 at the largest size, growth from smallest to largest, peak RSS.
TARGET_P95_MS = 100.0
TARGET_GROWTH = 1.5
TARGET_RSS_MB = 100.0
# A modest server: the default shared_buffers (128 MB) is below any production setting; the WAL settings only
# keep checkpoints out of the bulk load.
POSTGRES_SETTINGS = ("shared_buffers=512MB", "max_wal_size=4GB", "checkpoint_timeout=30min")
HEALTH_TIMEOUT_SECONDS = 120.0
SCRAPE_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 10.0
DURATION_SAMPLE = re.compile(r'^airflow_exporter_collector_duration_seconds\{collector="([^"]+)"\} (\S+)$', re.M)
# A scrape that is fast because it gave up is no result: it must have reached the DB with every collector.
FAILED_SAMPLE = re.compile(r"^(airflow_up|airflow_exporter_collector_success\{[^}]*\}) 0\.0$", re.M)
DROPPED_SAMPLE = re.compile(r"^airflow_exporter_series_dropped\{[^}]*\} (\S+)$", re.M)
VARIANTS = ("ours", "naive")


@dataclass
class Measurement:
    first_ms: float
    median_ms: float
    p95_ms: float
    rss_mb: float
    series: int
    complete_scrapes: int
    scrapes: int
    dropped_series: int
    load_average: float
    collectors_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class SizeResult:
    task_instances: int
    dag_runs: int
    load_seconds: float
    variants: dict[str, Measurement]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    # http.client, not urllib: no proxy from the environment can get between us and loopback.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exporter exited with {process.returncode}: {log.read_text()[-800:]}")
        try:
            if _get(port, "/healthz", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"exporter not healthy within {HEALTH_TIMEOUT_SECONDS:.0f}s: {log.read_text()[-800:]}")


def _scrape(port: int) -> tuple[float, str]:
    started = time.perf_counter()
    status, body = _get(port, "/metrics", timeout=SCRAPE_TIMEOUT_SECONDS)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return elapsed_ms, body.decode()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def _stop(process: subprocess.Popen) -> None:
    stop_process(process, timeout=STOP_TIMEOUT_SECONDS)


def _command(variant: str, port: int, url: str) -> list[str]:
    venv_bin = Path(sys.executable).parent
    if variant == "ours":
        return [str(venv_bin / "airflow-obs"), "exporter", "--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "bench.naive_exporter", "--port", str(port), "--db-url", url]


def measure(variant: str, url: str, scrapes: int, workdir: Path) -> Measurement:
    """Start one exporter, warm it up with one scrape, time `scrapes` more, stop it."""
    port = _free_port()
    env = os.environ | {
        "AIRFLOW_OBS_EXPORTER_DB_URL": url,
        # A cache would time the cache, not the queries.
        "AIRFLOW_OBS_EXPORTER_SNAPSHOT_CACHE_SECONDS": "0",
    }
    log = workdir / f"{variant}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            _command(variant, port, url),
            env=env,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(port, process, log)
        first_ms, _ = _scrape(port)
        times: list[float] = []
        per_collector: dict[str, list[float]] = defaultdict(list)
        series = complete = dropped = 0
        for _ in range(scrapes):
            elapsed_ms, body = _scrape(port)
            times.append(elapsed_ms)
            for collector, seconds in DURATION_SAMPLE.findall(body):
                per_collector[collector].append(float(seconds) * 1000)
            series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
            complete += not FAILED_SAMPLE.search(body)
            dropped = max(dropped, int(sum(float(n) for n in DROPPED_SAMPLE.findall(body))))
        rss_mb = _peak_rss_mb(process.pid)
        load_average = os.getloadavg()[0]  # other work on the machine skews every number: say how much there was
    finally:
        _stop(process)
    return Measurement(
        first_ms=first_ms,
        median_ms=statistics.median(times),
        p95_ms=nearest_rank(times, 0.95),
        rss_mb=rss_mb,
        series=series,
        complete_scrapes=complete,
        scrapes=scrapes,
        dropped_series=dropped,
        load_average=load_average,
        collectors_ms={name: statistics.median(values) for name, values in sorted(per_collector.items())},
    )


def run(sizes: list[int], scrapes: int, workdir: Path) -> tuple[list[SizeResult], str]:
    """Measure both variants at every size, each size in its own database; returns results and the PG version."""
    from airflow.models import import_all_models  # imported before timing any load
    from sqlalchemy import create_engine, text

    from local_stack.throwaway_postgres import create_database, throwaway_cluster

    import_all_models()
    results = []
    with throwaway_cluster(settings=POSTGRES_SETTINGS) as port:
        admin = create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
        for size in sizes:
            name = f"bench_{size}"
            url = create_database(port, name)
            print(f"[bench] loading {size:,} task instances over {DAGS} DAGs ...", flush=True)
            started = time.perf_counter()
            counts = load_synthetic_history(url, size, dags=DAGS)
            load_seconds = time.perf_counter() - started
            with admin.connect() as connection:
                # Flush the load's dirty pages now, not during the timed scrapes (as a settled DB would be).
                connection.execute(text("CHECKPOINT"))
            print(f"[bench] loaded in {load_seconds:.1f} s: {counts}", flush=True)
            variants = {}
            for variant in VARIANTS:
                # The baseline takes seconds per scrape at 5 M: fewer of its scrapes say as much about it.
                variant_scrapes = scrapes if variant == "ours" else min(scrapes, NAIVE_SCRAPES)
                variants[variant] = measure(variant, url, variant_scrapes, workdir)
                print(f"[bench] {_human(size)} {variant}: {variants[variant]}", flush=True)
            results.append(SizeResult(counts["task_instance"], counts["dag_run"], load_seconds, variants))
            with admin.connect() as connection:  # each size is a fresh database; free the disk now
                connection.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()
    return results, version


def _human(count: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if count >= scale:
            return f"{count / scale:g}{unit}"
    return str(count)


def render(results: list[SizeResult], scrapes: int, pg_version: str) -> str:
    """The generated markdown: conditions, one row per size and variant, collector medians, targets."""
    system = os.uname()
    loads = [m.load_average for r in results for m in r.variants.values()]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {system.sysname} {system.release}, {os.cpu_count()} cores "
        f"(1-min load average after each measurement: {min(loads):.1f} to {max(loads):.1f}), PostgreSQL {pg_version} "
        f"({', '.join(POSTGRES_SETTINGS)}); {DAGS} DAGs; {scrapes} timed scrapes of ours and up to {NAIVE_SCRAPES} of "
        "the naive baseline per size, after one warm-up scrape. *Complete*: scrapes with `airflow_up 1` and every "
        "collector successful; *dropped*: series the exporter's series budget left out.",
        "",
        "| task instances | dag runs | load | variant | first scrape | median | p95 | peak RSS | series | complete "
        "| dropped |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for variant, m in result.variants.items():
            lines.append(
                f"| {result.task_instances:,} | {result.dag_runs:,} | {result.load_seconds:.0f} s | {variant} "
                f"| {m.first_ms:,.0f} ms | {m.median_ms:,.1f} ms | {m.p95_ms:,.1f} ms | {m.rss_mb:.0f} MB "
                f"| {m.series:,} | {m.complete_scrapes}/{m.scrapes} | {m.dropped_series:,} |"
            )
    labels = [_human(r.task_instances) for r in results]
    lines += ["", "Median duration of each collector in ms (`airflow_exporter_collector_duration_seconds`):", ""]
    lines += [f"| variant | collector | {' | '.join(labels)} |", "|---|---|" + "---:|" * len(labels)]
    for variant in VARIANTS:
        for collector in sorted({c for r in results for c in r.variants[variant].collectors_ms}):
            cells = [r.variants[variant].collectors_ms.get(collector) for r in results]
            shown = " | ".join("-" if v is None else f"{v:,.1f}" for v in cells)
            lines.append(f"| {variant} | {collector} | {shown} |")
    return "\n".join([*lines, "", *_target_lines(results)])


def _target_lines(results: list[SizeResult]) -> list[str]:
    small, large = results[0], results[-1]
    at = _human(large.task_instances)
    note = "" if large.task_instances >= 5_000_000 else " (the largest size measured; the target is set at 5M)"
    labels = [
        f"p95 < {TARGET_P95_MS:g} ms at {at}{note}",
        f"median scrape({at}) / scrape({_human(small.task_instances)}) < {TARGET_GROWTH:g}",
        f"peak RSS < {TARGET_RSS_MB:g} MB at every size",
        "every timed scrape complete",
    ]
    verdicts = {}
    for variant in VARIANTS:
        first, last = small.variants[variant], large.variants[variant]
        growth = last.median_ms / first.median_ms
        rss = max(r.variants[variant].rss_mb for r in results)
        complete = sum(r.variants[variant].complete_scrapes for r in results)
        total = sum(r.variants[variant].scrapes for r in results)
        verdicts[variant] = [
            (last.p95_ms < TARGET_P95_MS, f"{last.p95_ms:,.1f} ms"),
            (growth < TARGET_GROWTH, f"{growth:.2f}"),
            (rss < TARGET_RSS_MB, f"{rss:.0f} MB"),
            (complete == total, f"{complete}/{total}"),
        ]
    lines = ["| target | ours | naive (baseline) |", "|---|---|---|"]
    for row, label in enumerate(labels):
        cells = [f"{'pass' if ok else '**FAIL**'} ({shown})" for ok, shown in (verdicts[v][row] for v in VARIANTS)]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def write_docs(section: str, path: Path = DOCS) -> None:
    """Replace what lies between the markers in docs/benchmarks.md; everything else is kept."""
    write_section("exporter-bench", section, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="task instances per history")
    parser.add_argument("--scrapes", type=int, default=DEFAULT_SCRAPES, help="timed scrapes per variant and size")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the generated part of {DOCS.name}")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if args.scrapes < 1 or not sizes:
        parser.error("need at least one size and one scrape")
    with tempfile.TemporaryDirectory(prefix="airflow-obs-bench-") as folder:
        # Airflow reads (and writes) its home on import: a private one keeps ~/airflow and the dev stack untouched.
        os.environ["AIRFLOW_HOME"] = str(Path(folder) / "airflow-home")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        results, pg_version = run(sizes, args.scrapes, Path(folder))
    section = render(results, args.scrapes, pg_version)
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"[bench] wrote {DOCS.relative_to(REPO_ROOT)}")
    # The asset graph's cost depends on the number of DAGs, not on history: measured once, at DAGS.
    asset_graph_bench.main(["--write-docs"] if args.write_docs else [])


if __name__ == "__main__":
    main()
