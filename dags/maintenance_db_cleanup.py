"""Daily purge of old rows from Airflow's metadata DB with the real `airflow db clean` CLI."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, Param, get_current_context, task
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import fault_switch
from dag_suite.maintenance.db_clean import run_db_clean
from dag_suite.maintenance.metadata_db import METADATA_DB_CONN_ID, metadata_db_url

DOC_MD = f"""
### Metadata DB cleanup
Runs `airflow db clean --clean-before-timestamp <now - retention_days> --yes --skip-archive` in a subprocess
(15-minute timeout) and returns the rows deleted per table (XCom `return_value`). `dry_run` only counts them.
The CLI keeps each DAG's latest scheduled run and cascades deletes (task instances, XComs go with their run).

**Needs** the metadata DB URL: tasks run with DB access blocked, so define the connection `{METADATA_DB_CONN_ID}`
(e.g. `AIRFLOW_CONN_{METADATA_DB_CONN_ID.upper()}`); in-process runs (`airflow dags test`) use `[database]`.
**If it fails**: read the CLI's last lines in the log; rerun with `dry_run` to see what it would delete.
Scheduled after `maintenance_db_backup`, so the rows deleted are in last night's backup.
"""

with DAG(
    dag_id="maintenance_db_cleanup",
    schedule="45 1 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    **suite_dag_args(
        owner="platform-oncall",
        team="data-platform",
        tags=["maintenance", "metadata-db"],
        doc_md=DOC_MD,
        params={
            "retention_days": Param(30, type="integer", minimum=1, title="Keep rows newer than this many days"),
            "dry_run": Param(False, type="boolean", title="Only count what would be deleted"),
        },
        retries=1,
    ),
):

    @task
    @fault_switch
    def clean_metadata_db() -> dict:
        params = get_current_context()["params"]
        return run_db_clean(
            metadata_db_url(), retention_days=int(params["retention_days"]), dry_run=bool(params["dry_run"])
        )

    clean_metadata_db()
