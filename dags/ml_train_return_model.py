"""Train the order-return model weekly, or as soon as the drift monitor reports drift; deploy it past a quality gate."""

from __future__ import annotations

import logging
import platform
from datetime import UTC, datetime
from pathlib import Path

import sklearn
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import active_fault, fault_switch
from dag_suite.ml import MODEL_NAME, features, registry
from dag_suite.ml.drift import PSI_THRESHOLD, drift_asset, training_distributions
from dag_suite.ml.quality import GATE_METRIC, MIN_ROC_AUC, check_quality_gate
from dag_suite.ml.training import train
from dag_suite.warehouse import warehouse_hook

log = logging.getLogger(__name__)

TRAINING_WINDOW_DAYS = 90
DRIFT = drift_asset(MODEL_NAME)

DOC = f"""
### Train the return model (`{MODEL_NAME}`)

Predicts whether an order will be returned, from the warehouse's `orders` and `customers`.

1. **build_features**: orders dated in the `training_window_days` (default {TRAINING_WINDOW_DAYS}) days before the
   run's date: amount, customer tenure at order time, day of week, country; label `status = 'returned'`
   (completed and returned orders are labelled, cancelled ones are not).
2. **train_model**: a scikit-learn pipeline (log + scaling, one-hot, logistic regression), scored on a 25% holdout.
3. **quality_gate**: fails the run, without retries, unless holdout {GATE_METRIC} >= `min_roc_auc`
   (default {MIN_ROC_AUC}); the message names the metric, its value and the threshold. Nothing is deployed.
4. **deploy_model**: publishes `models/{MODEL_NAME}/<version>/` (model.pkl, metadata.json with metrics, features,
   training window, row counts and feature distributions for drift) and moves the `CURRENT` pointer atomically.

**Schedule**: Mondays 03:00 UTC, or when `ml_monitor_drift` emits `{DRIFT.uri}` (max PSI >= {PSI_THRESHOLD}).

**Roll back** to the previous version (or `--to N`), under the data dir (`AIRFLOW_OBS_DATA_DIR`):
`PYTHONPATH=dags python -m dag_suite.ml.registry rollback {MODEL_NAME}`, or from Python
`dag_suite.ml.registry.rollback("{MODEL_NAME}", to_version=None)`. `... registry status {MODEL_NAME}` lists versions.

**Fault switches** (params `demo_fault_task` / `demo_fault_mode`, or the Variable `demo_faults`): `fail`, `slow`
and `hang` on any task; `bad_data` on `build_features` or `train_model` shuffles the labels, so the model is no
better than chance and the run fails at `quality_gate` while `CURRENT` stays put.
"""


@task
@fault_switch
def build_features() -> dict:
    context = get_current_context()
    days = int(context["params"]["training_window_days"])
    start, end = features.window(features.run_as_of(context), days)
    rows = features.load_order_features(warehouse_hook(), start, end)
    if active_fault(context) == "bad_data":
        log.warning("fault switch bad_data: shuffling the labels of %d orders", len(rows))
        rows = features.shuffle_labels(rows)
    cleared = registry.clear_candidates(MODEL_NAME)
    folder = registry.candidate_dir(MODEL_NAME, context["run_id"])
    features.write_csv(folder / "training_data.csv", rows)
    log.info("%d orders in [%s, %s) -> %s (cleared %d old candidates)", len(rows), start, end, folder, cleared)
    return {"candidate": str(folder), "window_start": start.isoformat(), "window_end": end.isoformat()}


@task
@fault_switch
def train_model(built: dict) -> dict:
    context = get_current_context()
    folder = Path(built["candidate"])
    rows = features.read_csv(folder / "training_data.csv")
    labelled = [row for row in rows if row.labelled]
    if active_fault(context) == "bad_data":
        log.warning("fault switch bad_data: training on shuffled labels")
        labelled = features.shuffle_labels(labelled)
    x, y = features.matrix(labelled), features.labels(labelled)
    model, metrics = train(x, y)
    metadata = {
        "model_name": MODEL_NAME,
        "trained_at": datetime.now(UTC).isoformat(),
        "run_id": context["run_id"],
        "metrics": metrics,
        "features": [{"name": f.name, "kind": f.kind} for f in features.FEATURES],
        "feature_names": list(features.FEATURE_NAMES),
        "training_window": {"start": built["window_start"], "end": built["window_end"]},
        "rows": {"orders": len(rows), "labelled": len(labelled), "returned": int(y.sum())},
        "feature_distributions": training_distributions(rows),
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
    }
    registry.write_candidate(folder, model, metadata)
    log.info("trained %s on %d labelled orders: %s", MODEL_NAME, len(labelled), metrics)
    return {"candidate": str(folder), "metrics": metrics}


@task
@fault_switch
def quality_gate(trained: dict) -> str:
    threshold = float(get_current_context()["params"]["min_roc_auc"])
    message = check_quality_gate(trained["metrics"], threshold)
    log.info(message)
    return message


@task
@fault_switch
def deploy_model(trained: dict) -> int:
    version = registry.deploy(MODEL_NAME, Path(trained["candidate"]))
    log.info("deployed %s version %d; CURRENT -> %d", MODEL_NAME, version, version)
    return version


@dag(
    dag_id="ml_train_return_model",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=DRIFT),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    **suite_dag_args(
        owner="ml-eng",
        team="ml",
        tags=["ml", MODEL_NAME],
        doc_md=DOC,
        params={
            "min_roc_auc": Param(MIN_ROC_AUC, type="number", minimum=0.5, maximum=1.0, title="Quality gate: ROC AUC"),
            "training_window_days": Param(TRAINING_WINDOW_DAYS, type="integer", minimum=7, maximum=730),
        },
    ),
)
def ml_train_return_model():
    trained = train_model(build_features())
    quality_gate(trained) >> deploy_model(trained)


ml_train_return_model()
