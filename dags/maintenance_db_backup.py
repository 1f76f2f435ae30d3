"""Daily backup of Airflow's metadata DB, proven by a restore into a scratch copy, keeping the N latest.

Its Deadline Alert pages when a run takes far longer than the backup usually does: each run must succeed within the
average duration of the DAG's last runs (AverageRuntimeDeadline, 10 at most, 3 at least) plus `DEADLINE_MARGIN`.
Why that deadline: a backup's duration follows the database's size, which no fixed interval fits for long, and a
backup much slower than its own history (lock waits on the metadata DB, a stuck restore, a saturated disk) is the
warning worth having before `maintenance_db_cleanup` deletes rows at 01:45. The margin is several times the spread
of normal runs (seconds), so a normal run never misses it; until three runs have finished there is no deadline at
all, so a fresh stack stays quiet. A run made slow on purpose (`make incident SCENARIO=deadline_missed`) misses it
within two minutes. A run that fails before its deadline misses it too (Airflow clears a deadline only when the
run succeeds): the backup is still missing then, though its failure has paged already.
The callback is the observability plugin's, an AsyncCallback the triggerer runs (no worker slot needed, which a late
run may be holding): the miss arrives as `AirflowDagRunDeadlineMissed` through Alertmanager, like every other alert,
with the run's link and the runbook.
`airflow dags test` cannot end a successful run of a DAG with a Deadline Alert on Airflow 3.3 (the run's success
looks the alerts up by id, and dag.test()'s in-memory DAG has none yet: "'dict' object has no attribute 'hex'");
the scheduler's runs are not affected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param, get_current_context, task
from airflow_obs.observability.deadlines import deadline_missed
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import fault_switch
from dag_suite.maintenance.backups import prune_backups
from dag_suite.maintenance.metadata_backup import take_backup, verify_backup
from dag_suite.maintenance.metadata_db import METADATA_DB_CONN_ID, metadata_db_url
from dag_suite.paths import folder

OWNER, TEAM = "platform-oncall", "data-platform"
# On top of the average of the last runs; normal runs here vary by seconds. Size it to the spread of your backups.
DEADLINE_MARGIN = timedelta(seconds=90)
DEADLINE = DeadlineAlert(
    reference=DeadlineReference.AVERAGE_RUNTIME(max_runs=10, min_runs=3),
    interval=DEADLINE_MARGIN,
    callback=AsyncCallback(deadline_missed, kwargs={"owner": OWNER, "team": TEAM, "deadline": "usual duration"}),
    name="usual duration",
)

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
**Deadline**: a run must succeed within the average of the last runs plus {DEADLINE_MARGIN}; a miss warns the owner.
"""

with DAG(
    dag_id="maintenance_db_backup",
    schedule="15 1 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    deadline=DEADLINE,
    **suite_dag_args(
        owner=OWNER,
        team=TEAM,
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
