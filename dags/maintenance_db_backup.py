"""Daily backup of Airflow's metadata DB, proven by a restore into a scratch copy, keeping the N latest."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, Param, get_current_context, task
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import fault_switch
from dag_suite.maintenance.backups import prune_backups
from dag_suite.maintenance.metadata_backup import take_backup, verify_backup
from dag_suite.maintenance.metadata_db import METADATA_DB_CONN_ID, metadata_db_url
from dag_suite.paths import folder

DOC_MD = f"""
### Metadata DB backup
1. `backup_metadata_db`: PostgreSQL → `pg_dump -Fc`; SQLite → the online backup API. Files go to
   `<data dir>/backups/metadata_db/metadata-<UTC time>.dump|.sqlite`, with the source's row counts.
2. `verify_restore`: PostgreSQL → `createdb` + `pg_restore` into a scratch database, compare row counts of
   dag, dag_run, alembic_version (and alembic's version), drop the scratch database; SQLite → restore into a
   scratch file, `PRAGMA integrity_check` must be `ok`, same counts. A failing backup is renamed `*.failed`.
3. `prune_old_backups`: keeps the `keep_backups` newest verified backups.

**Needs** the metadata DB URL (connection `{METADATA_DB_CONN_ID}` under a real executor, see
`dag_suite/maintenance/metadata_db.py`) and, on PostgreSQL, the CREATEDB privilege for its role.
**If verify_restore fails**: the backup is unusable; keep the `*.failed` file and investigate before the next cleanup.
"""

with DAG(
    dag_id="maintenance_db_backup",
    schedule="15 1 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    **suite_dag_args(
        owner="platform-oncall",
        team="data-platform",
        tags=["maintenance", "metadata-db", "backup"],
        doc_md=DOC_MD,
        params={"keep_backups": Param(7, type="integer", minimum=1, title="Verified backups to keep")},
        retries=1,
    ),
):

    @task
    @fault_switch
    def backup_metadata_db() -> dict:
        return take_backup(metadata_db_url(), folder("backups", "metadata_db"))

    @task
    @fault_switch
    def verify_restore(backup: dict) -> dict:
        return verify_backup(metadata_db_url(), backup)

    @task
    @fault_switch
    def prune_old_backups() -> list[str]:
        return prune_backups(folder("backups", "metadata_db"), int(get_current_context()["params"]["keep_backups"]))

    verify_restore(backup_metadata_db()) >> prune_old_backups()
