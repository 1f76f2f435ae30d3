"""Daily deletion of old task-log files under Airflow's [logging] base_log_folder."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, Param, conf, get_current_context, task
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import fault_switch
from dag_suite.maintenance.log_cleanup import delete_old_logs

DOC_MD = """
### Task-log cleanup
Deletes log files (`*.log`, rotated `*.log.N`/`*.log.gz`) last modified more than `log_retention_days` ago under
`[logging] base_log_folder`, then the folders left empty. Other files and symbolic links are never touched or
followed. Returns files deleted, bytes freed, folders removed, files kept (XCom `return_value`).
**If it fails**: usually permissions on the log folder (the task runs as the Airflow user).
"""

with DAG(
    dag_id="maintenance_log_cleanup",
    schedule="30 2 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    **suite_dag_args(
        owner="platform-oncall",
        team="data-platform",
        tags=["maintenance", "logs"],
        doc_md=DOC_MD,
        params={"log_retention_days": Param(14, type="integer", minimum=1, title="Keep logs newer than (days)")},
        retries=1,
    ),
):

    @task
    @fault_switch
    def delete_old_task_logs() -> dict:
        days = int(get_current_context()["params"]["log_retention_days"])
        return delete_old_logs(conf.get("logging", "base_log_folder"), days)

    delete_old_task_logs()
