"""Watch the return model's inputs daily: PSI of recent orders' features against the training distribution."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task
from dag_suite.defaults import suite_dag_args
from dag_suite.etl.load import ORDERS_ASSET
from dag_suite.faults import active_fault, fault_switch
from dag_suite.ml import MODEL_NAME, drift, features, registry
from dag_suite.warehouse import warehouse_hook

log = logging.getLogger(__name__)

DRIFT = drift.drift_asset(MODEL_NAME)

DOC = f"""
### Drift monitor of the return model (`{MODEL_NAME}`)

Each time `etl_orders` loads `{ORDERS_ASSET.uri}`, and daily at 04:00 UTC whatever happened, compares the features of
the orders dated in the {drift.RECENT_DAYS} days before the run's date with the training distribution stored in the
deployed model's `metadata.json`. Scheduled on the ETL's asset, it is downstream of `etl_orders` in Airflow's asset
graph: while the ETL is failing, this DAG's alerts are held back and the ETL's page names it as affected.

1. **find_current_model**: the version `CURRENT` points at. With no model yet it logs "no model yet" and skips
   the rest of the run (the run succeeds).
2. **compute_drift**: PSI per feature (amount, tenure_days, day_of_week, country); fewer than
   {drift.MIN_RECENT_ROWS} recent orders measure nothing.
3. **record_drift**: one row per feature in the warehouse table `{drift.DRIFT_TABLE}` (model_name, ds, feature, psi,
   threshold, drifted, model_version, window, row count), replaced when the day is rerun.
4. **drift_detected**: continues only if the largest PSI >= {drift.PSI_THRESHOLD} (> 0.2 is a significant shift).
5. **emit_drift_event**: emits `{DRIFT.uri}` (extra: version, ds, PSI per feature), which triggers
   `ml_train_return_model`. Skipped when there is no drift, so no event.

**Roll back** a model the retraining made worse: `PYTHONPATH=dags python -m dag_suite.ml.registry rollback
{MODEL_NAME}` (see `ml_train_return_model`).

**Fault switches**: `fail`, `slow`, `hang` on any task; `bad_data` on `compute_drift` triples the recent amounts,
so drift is detected and retraining is triggered (a demo of the whole loop).
"""


@task.short_circuit
@fault_switch
def find_current_model() -> int | None:
    version = registry.current_version(MODEL_NAME)
    if version is None:
        log.warning("no model yet: %s has no deployed version; nothing to compare, skipping", MODEL_NAME)
    return version


@task
@fault_switch
def compute_drift(version: int) -> dict:
    context = get_current_context()
    metadata = registry.load_metadata(MODEL_NAME, version)
    as_of = features.run_as_of(context)
    window = features.window(as_of, drift.RECENT_DAYS)
    rows = features.load_order_features(warehouse_hook(), *window)
    if active_fault(context) == "bad_data":
        log.warning("fault switch bad_data: tripling the amounts of %d recent orders", len(rows))
        rows = [dataclasses.replace(row, amount=row.amount * 3) for row in rows]
    if len(rows) < drift.MIN_RECENT_ROWS:
        log.warning("only %d orders in [%s, %s): too few to measure drift", len(rows), *window)
        psi = {}
    else:
        psi = drift.measure(metadata["feature_distributions"], rows)
    result = drift.summary(MODEL_NAME, version, as_of.date(), window, len(rows), psi)
    log.info("drift of %s v%d: max PSI %s, per feature %s", MODEL_NAME, version, result["max_psi"], psi)
    return result


@task
@fault_switch
def record_drift(result: dict) -> int:
    written = drift.record(warehouse_hook(), result)
    log.info("%d rows written to %s for ds %s", written, drift.DRIFT_TABLE, result["ds"])
    return written


@task.short_circuit
@fault_switch
def drift_detected(result: dict) -> bool:
    if result["drifted"]:
        log.warning(
            "drift: max PSI %.3f >= %.2f in %s", result["max_psi"], result["threshold"], result["drifted_features"]
        )
    else:
        log.info("no drift: max PSI %s < %.2f", result["max_psi"], result["threshold"])
    return result["drifted"]


@task(outlets=[DRIFT])
@fault_switch
def emit_drift_event(result: dict) -> None:
    extra = {key: result[key] for key in ("model_version", "ds", "max_psi", "threshold", "drifted_features", "psi")}
    get_current_context()["outlet_events"][DRIFT].extra = extra
    log.warning("emitting %s: retraining of %s will be triggered", DRIFT.uri, MODEL_NAME)


@dag(
    dag_id="ml_monitor_drift",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * *", timezone="UTC"), assets=ORDERS_ASSET),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    **suite_dag_args(owner="ml-eng", team="ml", tags=["ml", MODEL_NAME, "drift"], doc_md=DOC),
)
def ml_monitor_drift():
    result = compute_drift(find_current_model())
    record_drift(result) >> drift_detected(result) >> emit_drift_event(result)


ml_monitor_drift()
