"""The daily orders ETL: end to end with dag.test() against a real source service and a fresh SQLite warehouse.

Tasks retry twice with a 20 s+ backoff and dag.test() waits out retry delays, so tests that expect a task to
fail set that task's `retries` to 0 on the (session-wide) DAG object through monkeypatch, which restores it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk import Asset
from dag_suite.etl import quality
from dag_suite.etl.extract import SourceApiError, fetch_exchange_rates
from dag_suite.etl.generator import BAD_ORDER_KINDS, generate_day
from dag_suite.etl.load import check_warehouse
from dag_suite.etl.transform import clean_customers, clean_orders
from dag_suite.source_api import make_source_api_server
from dag_suite.warehouse import WarehouseNotConfigured

from tests.dags.conftest import run_dag, task_states

DAG_ID = "etl_orders"
DS = "2026-11-20"
LOGICAL_DATE = datetime(2026, 11, 20, tzinfo=UTC)
TASKS = {"check_warehouse", "extract_customers", "extract_orders", "extract_exchange_rates", "transform",
         "quality_checks", "load"}  # fmt: skip


@pytest.fixture
def warehouse(warehouse_path: Path) -> Path:
    """A fresh SQLite warehouse behind the `warehouse` connection (the shared fixture sets it up)."""
    return warehouse_path


@pytest.fixture
def source_api(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """The real source service on a free loopback port, behind the source_api connection."""
    server = make_source_api_server("127.0.0.1", 0, latency_ms=5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SOURCE_API", f"http://127.0.0.1:{server.server_address[1]}")
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def etl(dagbag, warehouse, data_dir, source_api, monkeypatch: pytest.MonkeyPatch):
    """The DagBag, with a fresh warehouse, data folder and source service behind the DAG's connections."""
    dag = dagbag.get_dag(DAG_ID)
    assert dag is not None, dagbag.import_errors
    for task in dag.tasks:  # a broken task fails the test in seconds, not after 20 min or retry delays
        monkeypatch.setattr(task, "execution_timeout", timedelta(seconds=60))
        monkeypatch.setattr(task, "retry_delay", timedelta(0))
    return dagbag


def run(dagbag, **switches):
    """Run the DAG for DS, fault switches off unless given.

    Always explicit: in-process, Airflow's process_params writes a run's conf into the DAG's own Param objects,
    so a later run of the same (session-wide) DAG object without conf would inherit the previous fault switch.
    """
    return run_dag(dagbag, DAG_ID, LOGICAL_DATE, **{"demo_fault_task": "", "demo_fault_mode": "none", **switches})


def no_retries(monkeypatch: pytest.MonkeyPatch, dagbag, *task_ids: str) -> None:
    for task_id in task_ids:
        monkeypatch.setattr(dagbag.get_dag(DAG_ID).get_task(task_id), "retries", 0)


def counts(warehouse: Path) -> dict[str, int]:
    with closing(sqlite3.connect(warehouse)) as db:
        tables = ("customers", "orders", "quarantine")
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608


def asset_events(dag_run) -> list[tuple[str, dict]]:
    """(uri, extra) of the asset events the run's tasks emitted, from the metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == dag_run.run_id)
        )
        return [(uri, extra) for uri, extra in session.execute(query)]


def ti(dag_run, task_id: str):
    return next(t for t in dag_run.get_task_instances() if t.task_id == task_id)


# --- the DAG ---------------------------------------------------------------------------------------------------


def test_the_dag_file_imports_cleanly_with_every_task(dagbag):
    assert not {f: e for f, e in dagbag.import_errors.items() if f.endswith("etl_orders.py")}
    dag = dagbag.get_dag(DAG_ID)
    assert set(dag.task_dict) == TASKS
    assert "team:data-platform" in dag.tags


def test_the_dag_runs_daily_at_two_utc_without_catchup_and_its_load_updates_the_orders_asset(dagbag):
    dag = dagbag.get_dag(DAG_ID)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 2 * * *", "UTC")
    assert dag.catchup is False
    assert dag.start_date.year == 2026
    assert dag.get_task("load").outlets == [Asset("warehouse://orders")]


# --- end to end -------------------------------------------------------------------------------------------------


def test_the_etl_loads_a_date_end_to_end_and_quarantines_every_bad_row(etl, warehouse, data_dir):
    dag_run = run(etl)
    assert dag_run.state == "success", task_states(dag_run)

    day = generate_day(DS)
    bad_customers, bad_orders = len(day.bad("customers")), len(day.bad("orders"))
    assert bad_orders > 0
    assert bad_customers > 0
    counts_now = counts(warehouse)
    assert counts_now == {
        "customers": len(day.customers) - bad_customers,
        "orders": len(day.orders) - bad_orders,
        "quarantine": bad_customers + bad_orders,
    }
    with closing(sqlite3.connect(warehouse)) as db:
        rows = db.execute("SELECT source, row_number, reason FROM quarantine WHERE ds = ?", (DS,)).fetchall()
    assert {(source, number, reason.split(":")[0]) for source, number, reason in rows} == {
        (b.source, b.row_number, b.kind) for b in day.bad_rows
    }
    bad_order_rows = {b.row_number for b in day.bad("orders")}
    expected = {
        (o["order_id"], o["customer_id"], o["status"]) for n, o in enumerate(day.orders, 1) if n not in bad_order_rows
    }
    with closing(sqlite3.connect(warehouse)) as db:
        assert (
            set(db.execute("SELECT order_id, customer_id, status FROM orders WHERE order_date = ?", (DS,))) == expected
        )
    xcom = ti(dag_run, "transform").xcom_pull(task_ids="transform")
    assert xcom["quarantined"] == bad_customers + bad_orders
    assert xcom["quarantine_reasons"] == dict(Counter(b.kind for b in day.bad_rows))
    landing = data_dir / "landing" / DS
    assert json.loads((landing / "customers.json").read_text()) == day.customers
    assert (landing / "orders.csv").read_text().count("\n") == len(day.orders) + 1  # a header line
    assert json.loads((landing / "exchange_rates.json").read_text())["rates"] == day.rates  # over HTTP
    assert asset_events(dag_run) == [
        ("warehouse://orders/", {"ds": DS, "customers": counts_now["customers"], "orders": counts_now["orders"],
                                 "orders_in_warehouse": counts_now["orders"]})
    ]  # fmt: skip


def test_rerunning_a_date_leaves_the_row_counts_unchanged(etl, warehouse):
    assert run(etl).state == "success"
    first = counts(warehouse)
    assert run(etl).state == "success"
    assert counts(warehouse) == first
    assert first["orders"] > 0


# --- data-quality failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "failing_checks"),
    [
        ("transform", {"unique_order_ids", "referential_integrity"}),
        ("extract_orders", {"freshness"}),
        ("extract_exchange_rates", {"quarantine_share_orders"}),
    ],
)
def test_bad_data_fails_the_run_in_the_quality_check_named_in_the_error(etl, warehouse, capfd, task_id, failing_checks):
    dag_run = run(etl, demo_fault_task=task_id, demo_fault_mode="bad_data")

    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["quality_checks"] == "failed"
    assert states["load"] == "upstream_failed"
    assert ti(dag_run, "quality_checks").try_number == 1  # DataQualityError is not retried
    assert counts(warehouse)["orders"] == 0  # nothing reached the warehouse
    assert asset_events(dag_run) == []  # and the ML DAGs were not triggered
    output = "".join(capfd.readouterr())
    assert "DataQualityError" in output
    # The same check, called directly on the run's staged data, names exactly the failed checks and their numbers.
    with pytest.raises(quality.DataQualityError) as raised:
        quality.check_day(DS, ti(dag_run, "transform").xcom_pull(task_ids="transform"))
    assert set(re.findall(r"(\w+) FAILED", str(raised.value))) == failing_checks
    for name in failing_checks:
        assert f"{name} FAILED" in output


# --- fault switches --------------------------------------------------------------------------------------------


def test_the_fail_switch_fails_the_task_and_the_run(etl, monkeypatch, capfd):
    no_retries(monkeypatch, etl, "extract_orders")
    dag_run = run(etl, demo_fault_task="extract_orders", demo_fault_mode="fail")
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["extract_orders"] == "failed"
    assert states["extract_customers"] == "success"
    assert states["transform"] == "upstream_failed"
    assert "DemoFault" in "".join(capfd.readouterr())


def test_the_slow_switch_makes_the_task_take_at_least_the_slow_seconds(etl, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DEMO_FAULT_SLOW_SECONDS", "2")
    dag_run = run(etl, demo_fault_task="check_warehouse", demo_fault_mode="slow")
    assert dag_run.state == "success"
    slow = ti(dag_run, "check_warehouse")
    assert slow.end_date - slow.start_date >= timedelta(seconds=2)
    fast = ti(dag_run, "extract_customers")
    assert fast.end_date - fast.start_date < timedelta(seconds=2)


def test_the_hang_switch_is_stopped_by_the_execution_timeout_and_fails_the_run(etl, monkeypatch, capfd):
    no_retries(monkeypatch, etl, "check_warehouse")
    monkeypatch.setattr(etl.get_dag(DAG_ID).get_task("check_warehouse"), "execution_timeout", timedelta(seconds=2))
    dag_run = run(etl, demo_fault_task="check_warehouse", demo_fault_mode="hang")
    assert dag_run.state == "failed"
    hung = ti(dag_run, "check_warehouse")
    assert hung.state == "failed"
    assert timedelta(seconds=2) <= hung.end_date - hung.start_date < timedelta(seconds=30)
    assert "AirflowTaskTimeout" in "".join(capfd.readouterr())


# --- the HTTP extract ------------------------------------------------------------------------------------------


def test_a_failing_source_api_fails_the_rates_extract_with_a_message_naming_the_status(
    etl, source_api, monkeypatch, capfd
):
    source_api.error_rate = 1.0  # every /v1 request answers 503
    no_retries(monkeypatch, etl, "extract_exchange_rates")
    dag_run = run(etl)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["extract_exchange_rates"] == "failed"
    assert states["transform"] == "upstream_failed"
    output = "".join(capfd.readouterr())
    assert "SourceApiError" in output
    assert "HTTP 503 Service Unavailable" in output
    with pytest.raises(SourceApiError, match=r"after 2 attempt\(s\): HTTP 503 Service Unavailable"):
        fetch_exchange_rates(DS, attempts=2)


def test_the_rates_extract_retries_through_a_flaky_source_api(monkeypatch):
    # seed 7: the first two draws are below 0.5 (503), the third is not (200)
    server = make_source_api_server("127.0.0.1", 0, latency_ms=0, error_rate=0.5, seed=7)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SOURCE_API", f"http://127.0.0.1:{server.server_address[1]}")
        payload = fetch_exchange_rates(DS, attempts=3)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert payload["attempts"] == 3
    assert payload["rates"] == generate_day(DS).rates


def test_a_bad_request_to_the_source_api_is_not_retried(source_api):
    with pytest.raises(SourceApiError, match=r"after 1 attempt\(s\): HTTP 400"):
        fetch_exchange_rates("2026-02-30")


def test_a_missing_source_api_connection_says_how_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SOURCE_API", raising=False)
    with pytest.raises(SourceApiError, match="AIRFLOW_CONN_SOURCE_API"):
        fetch_exchange_rates(DS)


# --- configuration ---------------------------------------------------------------------------------------------


def test_a_missing_warehouse_connection_fails_the_first_task_naming_the_connection(etl, monkeypatch, capfd):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE")
    no_retries(monkeypatch, etl, "check_warehouse")
    dag_run = run(etl)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states.pop("check_warehouse") == "failed"
    assert set(states.values()) == {"upstream_failed"}
    output = "".join(capfd.readouterr())
    assert "WarehouseNotConfigured" in output
    assert "AIRFLOW_CONN_WAREHOUSE" in output
    with pytest.raises(WarehouseNotConfigured, match="'warehouse'.*AIRFLOW_CONN_WAREHOUSE"):
        check_warehouse()


# --- the steps on small in-memory data -------------------------------------------------------------------------


def order(order_id="O-1", customer_id="C1", order_date=DS, **extra):
    return {"order_id": order_id, "customer_id": customer_id, "order_date": order_date, "amount": 10.0,
            "currency": "USD", "status": "completed", **extra}  # fmt: skip


CUSTOMERS = [{"customer_id": "C1", "name": "Ada"}, {"customer_id": "C2", "name": "Grace"}]


def failed_checks(customers, orders, known=frozenset(), counts=None) -> dict[str, str]:
    return {r.name: r.detail for r in quality.evaluate(DS, customers, orders, set(known), counts) if not r.passed}


def test_quality_checks_pass_a_clean_batch(monkeypatch):
    monkeypatch.setattr(quality, "EXPECTED_CUSTOMERS", (1, 10))
    monkeypatch.setattr(quality, "EXPECTED_ORDERS", (1, 10))
    assert failed_checks(CUSTOMERS, [order(), order("O-2", "C2")]) == {}


def test_quality_check_row_count_fails_on_no_rows_and_on_too_many():
    assert quality.check_row_count("orders", 0, (0, 10)).passed is False
    result = quality.check_row_count("orders", 11, (1, 10))
    assert (result.passed, result.name, result.detail) == (False, "row_count_orders", "11 orders rows, expected 1..10")
    assert "row_count_orders" in failed_checks(CUSTOMERS, [])


def test_quality_check_not_null_fails_on_a_null_key_and_counts_the_rows():
    result = quality.check_not_null("orders", [order(customer_id=None), order("O-2", customer_id="")], ["customer_id"])
    assert result.passed is False
    assert "2 rows with null customer_id" in result.detail


def test_quality_check_unique_order_ids_fails_on_duplicates_naming_them():
    detail = failed_checks(CUSTOMERS, [order(), order(), order("O-2")])["unique_order_ids"]
    assert "1 order_id values appear more than once (2 rows) among 3 orders rows, e.g. O-1" in detail


def test_quality_check_referential_integrity_fails_on_orders_for_unknown_customers():
    detail = failed_checks(CUSTOMERS, [order(), order("O-2", "C404")])["referential_integrity"]
    assert detail == "1 of 2 orders reference customers that do not exist, e.g. C404"
    assert "referential_integrity" not in failed_checks(CUSTOMERS, [order("O-2", "C3")], known={"C3"})


def test_quality_check_freshness_fails_when_the_latest_order_is_not_the_run_date():
    detail = failed_checks(CUSTOMERS, [order(order_date="2026-11-19")])["freshness"]
    assert detail == "latest order_date is 2026-11-19, expected 2026-11-20"
    assert quality.check_freshness([], DS).detail == "latest order_date is none, expected 2026-11-20"


def test_quality_check_quarantine_share_fails_above_the_limit():
    assert quality.check_quarantine_share("orders", 100, 10).passed is True
    result = quality.check_quarantine_share("orders", 100, 11)
    assert (result.passed, result.detail) == (False, "11 of 100 orders rows quarantined (11.0%), at most 10% expected")


def test_enforce_raises_a_data_quality_error_naming_every_failed_check():
    results = [
        quality.check_freshness([order(order_date="2026-11-19")], DS),
        quality.check_unique("orders", [order()], "order_id"),
    ]
    with pytest.raises(
        quality.DataQualityError, match=r"1 data-quality check\(s\) failed for 2026-11-20: freshness FAILED"
    ):
        quality.enforce(DS, results)
    quality.enforce(DS, results[1:])  # passing checks raise nothing


def test_transform_quarantines_each_kind_of_bad_order_with_a_reason_and_loses_no_row():
    def raw(
        order_id, customer_id="C1", ordered_at="2026-11-20T10:00:00", amount="5", currency="USD", status="completed"
    ):
        return {"order_id": order_id, "customer_id": customer_id, "ordered_at": ordered_at, "amount": amount,
                "currency": currency, "status": status}  # fmt: skip

    rows = [
        raw("O-1", ordered_at="2026-11-20T10:00:00+00:00", currency="EUR"),
        raw("O-1", amount="6"),
        raw("O-2", customer_id=""),
        raw("O-3", ordered_at="yesterday"),
        raw("O-4", amount="-5"),
        raw("O-5", currency="BTC"),
        raw("O-6", customer_id="C404"),
        raw(""),
        raw("O-7", amount="five"),
        raw("O-8", status="lost"),
    ]
    clean, quarantined = clean_orders(rows, {"C1"}, {"USD": 1.0, "EUR": 1.1})
    assert [row["order_id"] for row in clean] == ["O-1"]
    assert clean[0]["amount_usd"] == 5.5
    assert clean[0]["order_date"] == DS
    assert [(q.row_number, q.kind) for q in quarantined] == [
        (2, "duplicate_order_id"), (3, "missing_customer_id"), (4, "unparseable_date"), (5, "negative_amount"),
        (6, "unknown_currency"), (7, "unknown_customer"), (8, "missing_order_id"), (9, "unparseable_amount"),
        (10, "unknown_status"),
    ]  # fmt: skip
    assert "O-1 already at row 1" in quarantined[0].reason
    assert json.loads(quarantined[1].raw) == rows[2]


def test_transform_quarantines_customers_without_id_or_name_and_duplicates():
    rows = [*CUSTOMERS, {"customer_id": "", "name": "X"}, {"customer_id": "C3", "name": ""}, CUSTOMERS[0]]
    clean, quarantined = clean_customers(rows)
    assert [c["customer_id"] for c in clean] == ["C1", "C2"]
    assert [q.kind for q in quarantined] == ["missing_customer_id", "missing_name", "duplicate_customer_id"]


def test_the_generator_is_deterministic_per_date_with_two_to_five_percent_bad_rows():
    day = generate_day(DS)
    assert generate_day(DS) == day
    assert generate_day("2026-11-21").orders != day.orders
    for source, rows in (("customers", day.customers), ("orders", day.orders)):
        assert 0.02 <= len(day.bad(source)) / len(rows) <= 0.05, source
    assert {b.kind for b in day.bad("orders")} == set(BAD_ORDER_KINDS)
    statuses = Counter(row["status"] for row in day.orders)
    assert set(statuses) == {"completed", "returned", "cancelled"}
    assert 0.05 <= statuses["returned"] / len(day.orders) <= 0.35
