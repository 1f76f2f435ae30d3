"""The status report: a pure function from runs to Markdown, PNG and JSON, and its DAG end to end."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.dags.conftest import run_dag, task_states
from tests.dags.http_standins import (
    PNG_MAGIC,
    REPORT_DAG,
    TOKEN,
    VIEWER,
    VIEWER_PASSWORD,
    Route,
    _json,
    serving,
)

# --- The status report -------------------------------------------------------------------------------------------

WINDOW = (datetime(2026, 3, 1, 6, 0, tzinfo=UTC), datetime(2026, 3, 2, 6, 0, tzinfo=UTC))


def api_run(dag_id: str, run_id: str, state: str, hour: int, duration: float | None, **fields: Any) -> dict:
    """A DAG run as GET /api/v2/dags/~/dagRuns lists it (the subset of fields the report reads)."""
    run_after = WINDOW[0] + timedelta(hours=hour)
    return {"dag_id": dag_id, "dag_run_id": run_id, "state": state, "run_after": run_after.isoformat(),
            "duration": duration, **fields}  # fmt: skip


FIXED_RUNS = [
    api_run("etl_orders", "scheduled__1", "success", 1, 60.0),
    api_run("etl_orders", "scheduled__2", "success", 2, 90.0),
    api_run("etl_orders", "scheduled__3", "failed", 3, 300.0),
    api_run("etl_orders", "scheduled__4", "success", 4, 30.0),
    api_run("ml_train", "scheduled__1", "success", 5, 1200.0),
    api_run("ml_train", "manual__2", "running", 23, None),
    # No `duration`: the report falls back to end_date - start_date.
    api_run(
        "reports", "scheduled__1", "failed", 6, None, start_date="2026-03-01T12:00:00Z", end_date="2026-03-01T12:00:10Z"
    ),  # fmt: skip
    api_run(
        "reports",
        "scheduled__2",
        "failed",
        8,
        None,
        start_date="2026-03-01T14:00:00+00:00",
        end_date="2026-03-01T14:00:20+00:00",
    ),  # fmt: skip
    api_run("backfill_only", "backfill__1", "queued", 9, None),
]
FIXED_FAILED_TIS = [
    {"dag_id": "etl_orders", "dag_run_id": "scheduled__3", "task_id": "transform"},
    {"dag_id": "etl_orders", "dag_run_id": "scheduled__3", "task_id": "load"},
    {"dag_id": "etl_orders", "dag_run_id": "scheduled__3", "task_id": "load"},  # a second mapped index
    {"dag_id": "reports", "dag_run_id": "scheduled__1", "task_id": "render"},
]


def test_the_report_computes_success_rates_slowest_dags_and_failures_and_draws_a_real_chart(tmp_path) -> None:
    from dag_suite.monitoring.report import build_report, write_report
    from matplotlib import image

    report = build_report(FIXED_RUNS, FIXED_FAILED_TIS, [], *WINDOW)
    numbers = report.numbers

    assert numbers["totals"] == {
        "runs": 9,
        "by_state": {"failed": 3, "queued": 1, "running": 1, "success": 4},
        "success_rate": 0.5714,
    }
    dags = {dag["dag_id"]: dag for dag in numbers["dags"]}
    assert {d: (dags[d]["runs"], dags[d]["success_rate"]) for d in dags} == {
        "backfill_only": (1, None),
        "etl_orders": (4, 0.75),
        "ml_train": (2, 1.0),
        "reports": (2, 0.0),
    }
    assert dags["etl_orders"]["by_state"] == {"failed": 1, "success": 3}
    assert numbers["slowest_dags"] == [
        {"dag_id": "ml_train", "max_duration_s": 1200.0, "mean_duration_s": 1200.0, "slowest_run_id": "scheduled__1"},
        {"dag_id": "etl_orders", "max_duration_s": 300.0, "mean_duration_s": 120.0, "slowest_run_id": "scheduled__3"},
        {"dag_id": "reports", "max_duration_s": 20.0, "mean_duration_s": 15.0, "slowest_run_id": "scheduled__2"},
    ]
    assert [(f["dag_id"], f["run_id"], f["failed_tasks"]) for f in numbers["failures"]] == [
        ("reports", "scheduled__2", []),
        ("reports", "scheduled__1", ["render"]),
        ("etl_orders", "scheduled__3", ["load", "transform"]),
    ]
    assert report.failing_dags == ["etl_orders", "reports"]
    assert "**Failing DAGs:** etl_orders, reports" in report.markdown
    assert "| etl_orders | scheduled__3 | load, transform |" in report.markdown
    assert "| etl_orders | 4 | 1 failed, 3 success | 75.0% | 300.0 s | 120.0 s |" in report.markdown

    paths = write_report(report, tmp_path)
    png = Path(paths["png"]).read_bytes()
    assert png.startswith(PNG_MAGIC) and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1100, 390)  # 11 x (2.5 + 0.35 x 4 DAGs) inches at 100 dpi
    pixels = image.imread(io.BytesIO(png))
    colours = {tuple(round(channel * 255) for channel in pixel[:3]) for pixel in pixels.reshape(-1, pixels.shape[2])}
    assert len(colours) > 50, "a near-blank image"
    assert {(0xC6, 0x28, 0x28), (0x2E, 0x7D, 0x32), (0x9E, 0x9E, 0x9E)} <= colours  # failed, success, queued bars
    assert json.loads(Path(paths["json"]).read_text()) == numbers
    assert Path(paths["markdown"]).read_text() == report.markdown


def rest_api_route(runs: list[dict], failed_tis: list[dict], requests_seen: list[tuple[str, dict]]) -> Route:
    """A stand-in of Airflow's REST API: /auth/token and the two listings the report reads, with their filters,
    limit/offset paging and bearer-token check, answering in the shape of Airflow's response models."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunCollectionResponse, DAGRunResponse
    from airflow.api_fastapi.core_api.datamodels.task_instances import (
        TaskInstanceCollectionResponse,
        TaskInstanceResponse,
    )

    def in_window(item: dict, query: dict[str, list[str]]) -> bool:
        run_after = item["run_after"]
        start = datetime.fromisoformat(query["run_after_gte"][0])
        end = datetime.fromisoformat(query["run_after_lt"][0])
        states = query.get("state")
        return start <= run_after < end and (not states or item["state"] in states)

    def page(items: list, query: dict[str, list[str]]) -> list:
        offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["50"])[0])
        return items[offset : offset + limit]

    def route(method, path, query, headers, body):
        requests_seen.append((path, query))
        if method == "POST" and path == "/auth/token":
            credentials = json.loads(body)
            if credentials != {"username": VIEWER, "password": VIEWER_PASSWORD}:
                return _json({"detail": "Invalid credentials"}, 401)
            return _json({"access_token": TOKEN}, 201)
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return _json({"detail": "Not authenticated"}, 401)
        if path == "/api/v2/dags/~/dagRuns":
            matching = [run for run in runs if in_window(run, query)]
            response = DAGRunCollectionResponse(
                dag_runs=[DAGRunResponse.model_validate(run) for run in page(matching, query)],
                total_entries=len(matching),
            )
        elif path == "/api/v2/dags/~/dagRuns/~/taskInstances":
            matching = [ti for ti in failed_tis if in_window(ti, query)]
            response = TaskInstanceCollectionResponse(
                task_instances=[TaskInstanceResponse.model_validate(ti) for ti in page(matching, query)],
                total_entries=len(matching),
            )
        else:
            return _json({"detail": "Not Found"}, 404)
        return _json(json.loads(response.model_dump_json(by_alias=True)))

    return route


def orm_run(dag_id: str, run_id: str, state: str, run_after: datetime, seconds: float | None) -> dict:
    """The attributes Airflow's DAGRunResponse model is validated from (as the API does from the ORM row)."""
    end = run_after + timedelta(seconds=seconds) if seconds is not None else None
    return {
        "run_id": run_id, "dag_id": dag_id, "logical_date": run_after, "queued_at": run_after,
        "start_date": run_after, "end_date": end, "duration": seconds, "data_interval_start": run_after,
        "data_interval_end": run_after, "run_after": run_after, "last_scheduling_decision": None,
        "run_type": "scheduled", "state": state, "triggered_by": "timetable", "triggering_user_name": None,
        "conf": {}, "note": None, "dag_versions": [], "bundle_version": None,
        "dag_model": {"dag_display_name": dag_id}, "partition_key": None, "partition_date": None,
    }  # fmt: skip


def orm_failed_ti(dag_id: str, run_id: str, task_id: str, run_after: datetime) -> dict:
    return {
        "id": uuid.uuid4(), "task_id": task_id, "dag_id": dag_id, "dag_run_id": run_id, "map_index": -1,
        "logical_date": run_after, "run_after": run_after, "start_date": run_after, "end_date": run_after,
        "duration": 1.0, "state": "failed", "try_number": 3, "max_tries": 2, "task_display_name": task_id,
        "dag_run": {"dag_model": {"dag_display_name": dag_id}}, "hostname": "worker", "unixname": "airflow",
        "pool": "default_pool", "pool_slots": 1, "queue": "default", "priority_weight": 1,
        "operator": "_PythonDecoratedOperator", "operator_name": "@task", "queued_when": None,
        "scheduled_when": None, "pid": None, "executor": None, "executor_config": "{}", "note": None,
        "rendered_map_index": None, "trigger": None, "triggerer_job": None, "dag_version": None,
    }  # fmt: skip


def test_the_report_dag_reads_the_rest_api_and_the_warehouse_and_writes_md_png_and_json(
    dagbag, warehouse_path, data_dir, monkeypatch
) -> None:
    from dag_suite.monitoring import airflow_api, health_store

    monkeypatch.setattr(airflow_api, "PAGE_SIZE", 2)  # the listings below take several pages
    start, end = WINDOW  # the data interval of the run below: the 24 h before 06:00 UTC
    runs = [
        orm_run("etl_orders", "scheduled__a", "success", start + timedelta(hours=1), 100.0),
        orm_run("etl_orders", "scheduled__b", "failed", start + timedelta(hours=2), 400.0),
        orm_run("etl_orders", "scheduled__c", "success", start + timedelta(hours=3), 200.0),
        orm_run("ml_train", "scheduled__a", "success", start + timedelta(hours=4), 900.0),
        orm_run("ml_train", "manual__b", "running", end - timedelta(minutes=1), None),
        orm_run("etl_orders", "scheduled__old", "failed", start - timedelta(minutes=1), 50.0),  # before the window
        orm_run("etl_orders", "scheduled__new", "failed", end, 50.0),  # the window's end is excluded
    ]
    failed_tis = [
        orm_failed_ti("etl_orders", "scheduled__b", "load", start + timedelta(hours=2)),
        orm_failed_ti("etl_orders", "scheduled__old", "extract", start - timedelta(minutes=1)),
    ]
    with contextlib.closing(sqlite3.connect(warehouse_path)) as db, db:
        db.execute(health_store.DDL)
        db.executemany(
            "INSERT INTO stack_health VALUES (?, ?, ?, ?, ?)",
            [
                ("2026-03-01T07:00:00+00:00", "prometheus", 1, 10.0, "GET /-/ready answered HTTP 200"),
                ("2026-03-01T08:00:00+00:00", "prometheus", 0, None, "GET http://127.0.0.1:1/-/ready failed"),
                ("2026-03-01T09:00:00+00:00", "prometheus", 1, 30.0, "GET /-/ready answered HTTP 200"),
                ("2026-03-01T09:00:00+00:00", "exporter", 1, 5.0, "GET /healthz answered HTTP 200"),
                ("2026-03-02T06:00:00+00:00", "exporter", 0, None, "after the window: not in this report"),
            ],
        )
    requests_seen: list[tuple[str, dict]] = []
    with serving(rest_api_route(runs, failed_tis, requests_seen)) as api_url:
        monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", api_url.replace("http://", f"http://{VIEWER}:s3cret%2Fpw@"))
        dag_run = run_dag(dagbag, REPORT_DAG, logical_date=end)

    assert dag_run.state == "success", task_states(dag_run)
    folder = data_dir / "reports" / "2026-03-02"
    assert sorted(path.name for path in folder.iterdir()) == ["report.json", "report.md", "report.png"]
    assert (folder / "report.png").read_bytes().startswith(PNG_MAGIC)
    numbers = json.loads((folder / "report.json").read_text())
    assert numbers["window"] == {"start": "2026-03-01T06:00:00+00:00", "end": "2026-03-02T06:00:00+00:00"}
    assert numbers["totals"] == {"runs": 5, "by_state": {"failed": 1, "running": 1, "success": 3}, "success_rate": 0.75}
    assert [(d["dag_id"], d["success_rate"], d["max_duration_s"]) for d in numbers["dags"]] == [
        ("etl_orders", 0.6667, 400.0),
        ("ml_train", 1.0, 900.0),
    ]
    assert [d["dag_id"] for d in numbers["slowest_dags"]] == ["ml_train", "etl_orders"]
    assert [(f["dag_id"], f["run_id"], f["failed_tasks"]) for f in numbers["failures"]] == [
        ("etl_orders", "scheduled__b", ["load"])
    ]
    health = {row["component"]: row for row in numbers["stack_health"]}
    assert health["prometheus"]["checks"] == 3 and health["prometheus"]["unhealthy_checks"] == 1
    assert health["prometheus"]["availability"] == 0.6667 and health["prometheus"]["mean_latency_ms"] == 20.0
    assert health["exporter"]["latest"] == {
        "checked_at": "2026-03-01T09:00:00+00:00",
        "healthy": True,
        "detail": "GET /healthz answered HTTP 200",
    }
    assert "**Failing DAGs:** etl_orders" in (folder / "report.md").read_text()
    run_pages = [query for path, query in requests_seen if path == "/api/v2/dags/~/dagRuns"]
    assert len(run_pages) == 3, "5 runs in pages of 2"
    assert run_pages[0]["run_after_gte"] == ["2026-03-01T06:00:00+00:00"]
    ti_queries = [query for path, query in requests_seen if path.endswith("/taskInstances")]
    assert ti_queries and all(query["state"] == ["failed"] for query in ti_queries)
