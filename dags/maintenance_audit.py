"""Daily audit: configuration drift against a committed baseline, and a security audit; fails listing every finding."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.sdk import DAG, conf, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import fault_switch
from dag_suite.maintenance.auth_audit import password_findings, ui_auth_findings
from dag_suite.maintenance.config_drift import describe, find_drift, load_baseline
from dag_suite.maintenance.connection_audit import connection_findings, environment_findings
from dag_suite.maintenance.masking_check import check_masking, masking_findings
from dag_suite.maintenance.metadata_db import MetadataDbNotConfigured, metadata_db_url

log = logging.getLogger(__name__)

DOC_MD = """
### Configuration and security audit
Each check returns its findings; `report_findings` fails listing all of them (one line each).
- `check_config_drift`: settings of the running Airflow vs `dag_suite/maintenance/expected_config.yml`
  (key, expected, actual). Change the baseline in a reviewed commit when a change is intended.
- `audit_ui_auth`: UI auth on (`simple_auth_manager_all_admins` False); no SimpleAuthManager user whose password
  is its user name or a well-known default (admin, airflow, password, ...).
- `audit_connections`: connection extras holding secrets that Airflow would not mask (metadata DB and
  `AIRFLOW_CONN_*`); needs the metadata DB URL (connection `airflow_metadata_db` under a real executor).
- `check_secrets_masking`: a random value registered with `mask_secret` must come out of the logs masked.
**If it fails**: the failed task's log lists each finding and what to change.
"""


class AuditFailed(AirflowFailException):
    """The audit found drifted settings or security problems: fails the task at once, retrying changes nothing."""


with DAG(
    dag_id="maintenance_audit",
    schedule="0 6 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    **suite_dag_args(
        owner="platform-oncall",
        team="data-platform",
        tags=["maintenance", "audit", "security"],
        doc_md=DOC_MD,
        retries=1,
    ),
):

    @task
    @fault_switch
    def check_config_drift() -> list[str]:
        return [describe(d) for d in find_drift(load_baseline(), conf)]

    @task
    @fault_switch
    def audit_ui_auth() -> list[str]:
        return ui_auth_findings(conf) + password_findings(conf)

    @task
    @fault_switch
    def audit_connections() -> list[str]:
        try:
            findings = connection_findings(metadata_db_url())
        except MetadataDbNotConfigured as exc:
            findings = [f"connections in the metadata DB not audited: {exc}"]
        return findings + environment_findings()

    @task
    @fault_switch
    def check_secrets_masking() -> list[str]:
        result = check_masking(conf.get("logging", "base_log_folder"), get_current_context()["ti"])
        log.info("secrets masking check: %s", result)
        return masking_findings(result)

    @task
    @fault_switch
    def report_findings(drift: list[str], ui_auth: list[str], connections: list[str], masking: list[str]) -> int:
        findings = [*drift, *ui_auth, *connections, *masking]
        if findings:
            raise AuditFailed(f"{len(findings)} audit finding(s):\n" + "\n".join(f"- {f}" for f in findings))
        log.info("audit passed: no drift, no security finding")
        return 0

    report_findings(check_config_drift(), audit_ui_auth(), audit_connections(), check_secrets_masking())
