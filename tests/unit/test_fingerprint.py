"""Error fingerprints: one per cause, whatever DAG, task, run, row, host or time it hit."""

from __future__ import annotations

import pytest
from airflow_obs.observability.notify.fingerprint import LENGTH, fingerprint, normalise


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            ('OperationalError: connection to server at "10.0.0.5", port 5432 failed: Connection refused',
             "etl_orders", "load", "scheduled__2026-12-01T02:00:00+00:00"),
            ('OperationalError: connection to server at "10.0.0.7", port 6432 failed: Connection refused',
             "ml_monitor_drift", "compute_drift", "manual__2026-12-05T08:46:22.074955+00:00"),
        ),
        (
            ("Executor LocalExecutor(parallelism=8) reported that the task instance <TaskInstance: etl.load "
             "manual__2026-12-05T08:46:22+00:00 [running] ti_id=01a24562-078e-7452-b29a-cd3b60987d8a> finished with "
             "state success, but the task instance's state attribute is running.", "etl", "load", "r1"),
            ("Executor LocalExecutor(parallelism=8) reported that the task instance <TaskInstance: report.render "
             "scheduled__2026-12-04T06:00:00+00:00 [running] ti_id=01a24569-9d2c-74bf-8a1b-381a45329c7b> finished "
             "with state success, but the task instance's state attribute is running.", "report", "render", "r2"),
        ),
        (
            ("DemoFault: demo fault switch: task check_config_drift was told to fail", "audit", "check_config_drift",
             "r"),
            ("DemoFault: demo fault switch: task delete_old_task_logs was told to fail", "logs", "delete_old_task_logs",
             "r"),
        ),
        (
            ("FileNotFoundError: [Errno 2] No such file: '/data/landing/2026-12-01/orders.csv'", "etl", "extract", "r"),
            ("FileNotFoundError: [Errno 2] No such file: '/data/landing/2026-12-02/orders.csv'", "etl", "extract", "s"),
        ),
    ],
    ids=["same-db-down-other-host-and-dag", "killed-tries-of-two-dags", "one-fault-two-tasks", "missing-file-per-day"],
)  # fmt: skip
def test_occurrences_of_one_cause_share_a_fingerprint(first: tuple, second: tuple) -> None:
    def of(case: tuple) -> str:
        error, dag_id, task_id, run_id = case
        return fingerprint(error, dag_id=dag_id, task_id=task_id, run_id=run_id)

    assert of(first) == of(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("KeyError: 'customer_id'", "ValueError: 'customer_id'"),
        ("OperationalError: connection refused", "OperationalError: password authentication failed"),
        ("NotEnoughTrainingData: 0 orders in the window", "DemoFault: demo fault switch: task x was told to fail"),
    ],
)
def test_different_causes_have_different_fingerprints(first: str, second: str) -> None:
    assert fingerprint(first) != fingerprint(second)


def test_a_task_id_is_replaced_as_a_whole_word_only() -> None:
    assert normalise("load failed during download", task_id="load") == "<task> failed during download"


def test_the_fingerprint_is_short_hex_and_stable() -> None:
    value = fingerprint("RuntimeError: boom")

    assert len(value) == LENGTH and int(value, 16) >= 0
    assert value == fingerprint("RuntimeError: boom")


def test_a_try_killed_before_reporting_is_one_cause_whether_the_sweep_or_the_scheduler_found_it() -> None:
    from airflow_obs.observability.failure_sweep import UNREPORTED_ERROR, cause_of

    scheduler = (
        "Executor LocalExecutor(parallelism=8) reported that the task instance <TaskInstance: etl.load manual__1 "
        "[running]> finished with state success, but the task instance's state attribute is running."
    )

    assert cause_of(scheduler) == cause_of(UNREPORTED_ERROR) == UNREPORTED_ERROR
    assert cause_of("ValueError: bad row") == ""
