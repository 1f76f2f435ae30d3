"""
# etl_orders: the daily orders ETL

Every day at 02:00 UTC, for the run's date (`ds`):

1. **check_warehouse**: the `warehouse` connection exists (else `WarehouseNotConfigured` says how to set
   `AIRFLOW_CONN_WAREHOUSE`); creates the `customers`, `orders` and `quarantine` tables if missing.
2. **extract_customers** / **extract_orders**: the files the shop system drops,
   `landing/<ds>/customers.json` and `landing/<ds>/orders.csv` (under `AIRFLOW_OBS_DATA_DIR`).
   **extract_exchange_rates**: `GET /v1/exchange-rates?date=<ds>` from the source service
   (connection `source_api`; `python -m local_stack source-api` runs it) through the HTTP provider, with a
   timeout and retries.
3. **transform**: validates and cleans; every bad row (missing customer, negative amount, bad date, unknown
   currency or status, duplicate order id, unknown customer) goes to the `quarantine` table with a reason.
4. **quality_checks**: row counts, quarantine share, no nulls in keys, unique ids, referential integrity,
   freshness. A failure raises `DataQualityError` naming the check and its numbers, before anything is loaded.
5. **load**: upserts customers and orders (by `customer_id` / `order_id`) and updates the asset
   `warehouse://orders`, which the ML DAGs are scheduled on.

Code: `dags/dag_suite/etl/` (one module per step).

## Rerun a date
Safe: a rerun replaces that date's files and quarantine rows and upserts the rest, so nothing is duplicated.
Clear the run in the UI, or `airflow dags test etl_orders 2026-11-20`.

## Demo fault switches
Trigger with params `demo_fault_task=<task id>` and `demo_fault_mode=fail|slow|hang|bad_data`, or set the
Variable `demo_faults` to `{"etl_orders": {"<task id>": "<mode>"}}`; delete it to switch off. Every task has
`fail`, `slow` and `hang`. `bad_data` works on:
- `extract_customers`: a truncated customers file, so too many orders are quarantined (quarantine_share);
- `extract_orders`: yesterday's orders again (freshness);
- `extract_exchange_rates`: no EUR rate, so EUR orders are quarantined (quarantine_share);
- `transform`: duplicate order ids and unknown customers let through (unique_order_ids, referential_integrity).
Each time `quality_checks` fails the run and nothing is loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from dag_suite.defaults import suite_dag_args
from dag_suite.etl import extract, load, quality, transform
from dag_suite.etl.load import ORDERS_ASSET
from dag_suite.etl.runtime import bad_data_requested, run_ds
from dag_suite.faults import fault_switch


@dag(
    dag_id="etl_orders",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    **suite_dag_args(owner="data-eng", team="data-platform", tags=["etl", "orders"], doc_md=__doc__),
)
def etl_orders():
    @task
    @fault_switch
    def check_warehouse() -> dict:
        """Fail first and clearly if the warehouse connection is missing; create the tables."""
        return load.check_warehouse()

    @task
    @fault_switch
    def extract_customers() -> str:
        """landing/<ds>/customers.json, as the shop system drops it."""
        return str(extract.extract_customers(run_ds(), bad_data=bad_data_requested()))

    @task
    @fault_switch
    def extract_orders() -> str:
        """landing/<ds>/orders.csv, as the shop system drops it."""
        return str(extract.extract_orders(run_ds(), bad_data=bad_data_requested()))

    @task
    @fault_switch
    def extract_exchange_rates() -> str:
        """landing/<ds>/exchange_rates.json, over HTTP from the source service."""
        return str(extract.extract_exchange_rates(run_ds(), bad_data=bad_data_requested()))

    @task(task_id="transform")
    @fault_switch
    def transform_day(customers_file: str, orders_file: str, rates_file: str) -> dict:
        """Clean rows to staging/<ds>/, bad rows to the quarantine table; returns the counts."""
        return transform.transform_day(run_ds(), bad_data=bad_data_requested())

    @task
    @fault_switch
    def quality_checks(counts: dict) -> dict:
        """Gate the load: DataQualityError names each failed check and its numbers."""
        return quality.check_day(run_ds(), counts)

    @task(task_id="load", outlets=[ORDERS_ASSET])
    @fault_switch
    def load_day(checks: dict) -> dict:
        """Upsert customers and orders; the asset event carries the counts."""
        counts = load.load_day(run_ds())
        get_current_context()["outlet_events"][ORDERS_ASSET].extra = counts
        return counts

    extracted = [extract_customers(), extract_orders(), extract_exchange_rates()]
    check_warehouse() >> extracted
    load_day(quality_checks(transform_day(*extracted)))


etl_orders()
