"""The probe DAG of the paging tests: fails on demand, so pages can be tested end to end under dag.test().

Built with the suite's shared factory and no callback: the plugin's listeners page, as they do for any DAG. Each
task retries once, at once. With `healthy` off:
- `flaky` fails its first try only (a retry that succeeds: nobody is paged);
- `broken` fails both tries (one page, for try 2);
- `mapped_work[1]` fails both tries, `mapped_work[0]` succeeds (one page, its log link on /mapped/1);
so the run fails. With `healthy` on, every task succeeds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from airflow_obs.observability.notify.outbox import OUTBOX
from dag_suite.defaults import suite_dag_args

DAG_ID = "notify_probe"
FAILING = {"broken", "mapped_work"}


def build_probe_dag() -> DAG:
    with DAG(
        DAG_ID,
        schedule="@daily",
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        **suite_dag_args(
            owner="data-platform",
            team="data-platform",
            tags=["probe"],
            doc_md="Fails on demand, so notifications can be tested end to end.",
            retries=1,
            retry_delay=timedelta(0),
            params={"healthy": Param(False, type="boolean"), "error_text": Param("boom", type="string")},
        ),
    ) as dag:

        @task
        def flaky() -> None:
            context = get_current_context()
            if not context["params"]["healthy"] and context["ti"].try_number == 1:
                raise RuntimeError("first try fails")

        @task
        def broken() -> None:
            context = get_current_context()
            if not context["params"]["healthy"]:
                raise RuntimeError(context["params"]["error_text"])

        @task
        def mapped_work(item: int) -> None:
            if item == 1 and not get_current_context()["params"]["healthy"]:
                raise RuntimeError("item 1 always fails")

        flaky()
        broken()
        mapped_work.expand(item=[0, 1])
    return dag


def register_probe_dag() -> DAG:
    """The probe DAG, serialised into the metadata DB (dag.test() runs only DAGs the DB knows)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    dag = build_probe_dag()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/nonexistent-folder-for-the-probe")
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag


DAY = [0]


def run_probe(dag: DAG, **conf: Any):
    """One run at its own logical date (dag.test() replaces a run of the same date).

    Each run gets a freshly built DAG: dag.test() writes a run's conf into the DAG's Param objects, and a
    deep copy (tests/dags/conftest.py's way around that) loses a mapped task's expand input.
    """
    DAY[0] += 1
    when = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=DAY[0])
    conf = {"healthy": False, "error_text": "boom", "demo_fault_task": "", "demo_fault_mode": "none", **conf}
    dag_run = build_probe_dag().test(logical_date=when, run_conf=conf)
    # A run's own listener (its failure, its recovery) sends from the outbox's thread, as in a scheduler.
    assert OUTBOX.drain(timeout=30), "the run's pages were still being sent after 30 s"
    return dag_run
