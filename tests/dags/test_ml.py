"""The ML DAGs: training past a quality gate into a versioned registry, rollback, and drift monitoring with PSI.

The warehouse is seeded here with a deterministic synthetic generator: returns are more likely for large amounts,
for some countries and for new customers, so a model can learn them. Every DAG run uses its own logical date:
the metadata DB is shared by the whole test session.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.dags.conftest import run_dag, task_states

TRAIN_DAG = "ml_train_return_model"
DRIFT_DAG = "ml_monitor_drift"
TRAIN_TASKS = ("build_features", "train_model", "quality_gate", "deploy_model")

COUNTRIES = {"US": 0.40, "DE": 0.20, "FR": 0.15, "GB": 0.15, "BR": 0.10}
SHIFTED_COUNTRIES = {"US": 0.20, "IN": 0.40, "MX": 0.40}
COUNTRY_EFFECT = {"DE": -0.5, "FR": 0.7, "BR": 1.5}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS customers (customer_id TEXT PRIMARY KEY, name TEXT, email TEXT, country TEXT, "
    "signup_date DATE, segment TEXT)",
    "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, customer_id TEXT, order_date DATE, "
    "amount NUMERIC, currency TEXT, status TEXT, channel TEXT)",
)


def seed_orders(path: Path, start: date, days: int, *, per_day: int = 50, seed: int = 1, shifted: bool = False) -> int:
    """Orders dated [start, start + days), one new customer each; `shifted`: amounts x3 and another country mix."""
    rng = np.random.default_rng(seed)
    mix = SHIFTED_COUNTRIES if shifted else COUNTRIES
    customers, orders = [], []
    for day in range(days):
        ordered = start + timedelta(days=day)
        for n in range(per_day):
            key = f"{seed}-{day}-{n}"
            amount = round(float(rng.lognormal(4.2, 0.6)) * (3 if shifted else 1), 2)
            country = str(rng.choice(list(mix), p=list(mix.values())))
            tenure = int(rng.exponential(200))
            logit = -4.0 + 0.03 * amount + COUNTRY_EFFECT.get(country, 0.0) + 2.0 * (tenure < 30)
            returned = rng.random() < 1 / (1 + math.exp(-logit))
            status = "cancelled" if rng.random() < 0.03 else "returned" if returned else "completed"
            signup = (ordered - timedelta(days=tenure)).isoformat()
            customers.append((f"c-{key}", f"Customer {key}", f"{key}@example.com", country, signup, "retail"))
            orders.append((f"o-{key}", f"c-{key}", ordered.isoformat(), amount, "EUR", status, "web"))
    with sqlite3.connect(path) as connection:
        for statement in SCHEMA:
            connection.execute(statement)
        connection.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", customers)
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", orders)
    connection.close()
    return len(orders)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 3, tzinfo=UTC)


# dag.test() runs tasks in-process, and merging a run's conf into the params mutates the DAG's own Param
# objects: a conf would leak into later runs of the same DagBag DAG. Every run here states all its params.
NO_FAULT = {"demo_fault_task": "", "demo_fault_mode": "none"}


def train(dagbag, warehouse: Path, day: date, *, seed: int | None = 1, **conf):
    """Seed the 60 days before `day` (unless seed is None) and run the training DAG at `day` 03:00 UTC."""
    from dag_suite.ml.quality import MIN_ROC_AUC

    if seed is not None:
        seed_orders(warehouse, day - timedelta(days=60), 60, seed=seed)
    conf = {**NO_FAULT, "min_roc_auc": MIN_ROC_AUC, "training_window_days": 90, **conf}
    return run_dag(dagbag, TRAIN_DAG, logical_date=at(day), **conf)


def monitor(dagbag, when: datetime):
    return run_dag(dagbag, DRIFT_DAG, logical_date=when, **NO_FAULT)


def model_dir(data_dir: Path) -> Path:
    return data_dir / "models" / "return_model"


def current(data_dir: Path) -> str | None:
    pointer = model_dir(data_dir) / "CURRENT"
    return pointer.read_text().strip() if pointer.exists() else None


def drift_rows(warehouse: Path, ds: date) -> dict[str, float]:
    with sqlite3.connect(warehouse) as connection:
        rows = connection.execute("SELECT feature, psi FROM model_drift WHERE ds = ?", (ds.isoformat(),)).fetchall()
    connection.close()
    return dict(rows)


def drift_events(run_id: str) -> list:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.extra, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == DRIFT_DAG, AssetEvent.source_run_id == run_id)
        )
        return [(uri, extra) for extra, uri in session.execute(query)]


def test_ml_dags_import_without_errors(dagbag):
    errors = {path: error for path, error in dagbag.import_errors.items() if Path(path).name.startswith("ml_")}
    assert errors == {}
    assert {TRAIN_DAG, DRIFT_DAG} <= set(dagbag.dag_ids)


def test_the_training_dag_is_scheduled_weekly_or_by_the_drift_asset(dagbag):
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

    timetable = dagbag.get_dag(TRAIN_DAG).timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert isinstance(timetable.timetable, CronTriggerTimetable)
    assert timetable.timetable.expression == "0 3 * * 1"
    assert timetable.asset_condition == Asset("model://return_model/drift")
    drift_task = dagbag.get_dag(DRIFT_DAG).get_task("emit_drift_event")
    assert drift_task.outlets == [Asset("model://return_model/drift")]


def test_training_runs_end_to_end_and_deploys_a_versioned_model_that_passes_the_gate_and_predicts(
    dagbag, warehouse_path, data_dir
):
    from dag_suite.ml.features import FEATURE_NAMES
    from dag_suite.ml.quality import MIN_ROC_AUC

    dag_run = train(dagbag, warehouse_path, date(2026, 3, 2))

    assert dag_run.state == "success", task_states(dag_run)
    assert task_states(dag_run) == dict.fromkeys(TRAIN_TASKS, "success")
    version_dir = model_dir(data_dir) / "1"
    assert sorted(p.name for p in version_dir.iterdir()) == ["metadata.json", "model.pkl"]
    assert current(data_dir) == "1"
    metadata = json.loads((version_dir / "metadata.json").read_text())
    assert metadata["version"] == 1
    assert metadata["metrics"]["roc_auc"] >= MIN_ROC_AUC
    assert metadata["feature_names"] == list(FEATURE_NAMES)
    assert metadata["training_window"] == {"start": "2025-12-02", "end": "2026-03-02"}
    assert metadata["rows"]["orders"] == 3000
    assert set(metadata["feature_distributions"]) == set(FEATURE_NAMES)
    assert datetime.fromisoformat(metadata["trained_at"]).tzinfo is not None
    model = pickle.loads((version_dir / "model.pkl").read_bytes())  # noqa: S301 - written by the test's own run
    orders = np.array([[900.0, 2, 0, "BR"], [20.0, 800, 3, "DE"]], dtype=object)
    risky, safe = model.predict_proba(orders)[:, 1]
    assert risky > 0.5 > safe
    assert not (model_dir(data_dir) / ".candidates").exists() or not any(
        (model_dir(data_dir) / ".candidates").iterdir()
    )


def test_a_second_training_run_deploys_version_2_and_rollback_moves_current_back_to_version_1(
    dagbag, warehouse_path, data_dir
):
    from dag_suite.ml import registry

    assert train(dagbag, warehouse_path, date(2026, 3, 9)).state == "success"
    assert train(dagbag, warehouse_path, date(2026, 3, 16), seed=2).state == "success"

    assert registry.versions("return_model") == [1, 2]
    assert current(data_dir) == "2"
    assert registry.load_metadata("return_model", 2)["training_window"]["end"] == "2026-03-16"
    assert registry.rollback("return_model") == 1
    assert current(data_dir) == "1"
    with pytest.raises(registry.RegistryError, match="version 1 is the oldest"):
        registry.rollback("return_model")
    assert registry.rollback("return_model", to_version=2) == 2
    assert current(data_dir) == "2"
    with pytest.raises(registry.RegistryError, match="no version 7"):
        registry.rollback("return_model", to_version=7)
    assert current(data_dir) == "2"


def test_the_quality_gate_fails_the_run_when_the_threshold_is_impossibly_high_and_current_does_not_move(
    dagbag, warehouse_path, data_dir, capfd
):
    assert train(dagbag, warehouse_path, date(2026, 3, 23)).state == "success"
    capfd.readouterr()

    dag_run = train(dagbag, warehouse_path, date(2026, 3, 30), seed=None, min_roc_auc=1.0)

    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states == {
        "build_features": "success",
        "train_model": "success",
        "quality_gate": "failed",
        "deploy_model": "upstream_failed",
    }
    assert current(data_dir) == "1"
    assert sorted(p.name for p in model_dir(data_dir).iterdir() if p.name.isdigit()) == ["1"]
    # The task log (printed by the in-process task runner) carries the gate's message.
    assert re.search(r"quality gate failed: roc_auc=0\.\d{4} is below the threshold 1\.0000", capfd.readouterr().out)


def test_bad_data_on_the_feature_task_yields_a_model_the_quality_gate_rejects(dagbag, warehouse_path, data_dir):
    dag_run = train(
        dagbag, warehouse_path, date(2026, 4, 6), demo_fault_task="build_features", demo_fault_mode="bad_data"
    )

    assert dag_run.state == "failed"
    assert task_states(dag_run)["quality_gate"] == "failed"
    assert task_states(dag_run)["deploy_model"] == "upstream_failed"
    assert current(data_dir) is None


def test_the_quality_gate_message_names_the_metric_its_value_and_the_threshold():
    from dag_suite.ml.quality import QualityGateFailed, check_quality_gate

    with pytest.raises(QualityGateFailed, match=r"roc_auc=0\.5123 is below the threshold 0\.6500"):
        check_quality_gate({"roc_auc": 0.5123}, 0.65)
    assert "passed" in check_quality_gate({"roc_auc": 0.8}, 0.65)
    with pytest.raises(QualityGateFailed, match="roc_auc is missing"):
        check_quality_gate({}, 0.65)


def test_psi_is_about_zero_for_identical_distributions_and_above_the_threshold_for_shifted_ones():
    from dag_suite.ml.drift import PSI_THRESHOLD
    from dag_suite.ml.psi import feature_psi, psi, summarize

    rng = np.random.default_rng(3)
    reference = rng.normal(100, 20, 5000)
    numeric = summarize(reference, "numeric")
    assert len(numeric["proportions"]) == 10
    assert feature_psi(numeric, reference) == pytest.approx(0, abs=1e-9)
    assert feature_psi(numeric, rng.normal(100, 20, 5000)) < 0.02
    assert feature_psi(numeric, rng.normal(130, 20, 5000)) > PSI_THRESHOLD
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * math.log(1.8) - 0.4 * math.log(0.2))
    countries = summarize(["US", "US", "DE", "FR"], "categorical")
    assert feature_psi(countries, ["US", "DE", "FR", "US"]) == pytest.approx(0)
    assert feature_psi(countries, ["IN", "MX", "US", "IN"]) > PSI_THRESHOLD


def test_the_drift_dag_reports_no_model_yet_and_skips_without_failing(dagbag, warehouse_path, data_dir, caplog):
    seed_orders(warehouse_path, date(2026, 4, 6), 7)

    dag_run = monitor(dagbag, at(date(2026, 4, 13)))

    assert dag_run.state == "success"
    states = task_states(dag_run)
    assert states.pop("find_current_model") == "success"
    assert set(states.values()) == {"skipped"}
    assert drift_events(dag_run.run_id) == []
    assert "no model yet: return_model has no deployed version" in caplog.text


def test_recent_orders_like_the_training_data_have_low_psi_and_emit_no_drift_event(dagbag, warehouse_path, data_dir):
    from dag_suite.ml.drift import PSI_THRESHOLD

    assert train(dagbag, warehouse_path, date(2026, 4, 20)).state == "success"
    seed_orders(warehouse_path, date(2026, 4, 20), 7, seed=5)

    dag_run = monitor(dagbag, at(date(2026, 4, 27)))

    assert dag_run.state == "success"
    states = task_states(dag_run)
    assert states["record_drift"] == "success"
    assert states["drift_detected"] == "success"
    assert states["emit_drift_event"] == "skipped"
    psi = drift_rows(warehouse_path, date(2026, 4, 27))
    assert set(psi) == {"amount", "tenure_days", "day_of_week", "country"}
    assert max(psi.values()) < PSI_THRESHOLD
    assert drift_events(dag_run.run_id) == []


def test_shifted_recent_orders_cross_the_psi_threshold_record_drift_rows_and_emit_the_drift_event(
    dagbag, warehouse_path, data_dir
):
    from dag_suite.ml.drift import PSI_THRESHOLD

    assert train(dagbag, warehouse_path, date(2026, 5, 4)).state == "success"
    seed_orders(warehouse_path, date(2026, 5, 4), 7, seed=6, shifted=True)

    dag_run = monitor(dagbag, at(date(2026, 5, 11)))
    rerun = monitor(dagbag, at(date(2026, 5, 11)) + timedelta(hours=1))

    assert dag_run.state == "success"
    assert task_states(dag_run) == dict.fromkeys(
        ("find_current_model", "compute_drift", "record_drift", "drift_detected", "emit_drift_event"), "success"
    )
    psi = drift_rows(warehouse_path, date(2026, 5, 11))
    assert psi["amount"] > PSI_THRESHOLD
    assert psi["country"] > PSI_THRESHOLD
    with sqlite3.connect(warehouse_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM model_drift").fetchone() == (4,)  # the rerun replaced rows
    connection.close()
    ((uri, extra),) = drift_events(dag_run.run_id)
    assert uri == "model://return_model/drift"
    assert extra["model_version"] == 1
    assert extra["max_psi"] > PSI_THRESHOLD
    assert "amount" in extra["drifted_features"]
    assert rerun.state == "success"


def test_the_drift_monitor_runs_daily_and_on_each_load_of_the_etls_orders(dagbag):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
    from dag_suite.etl.load import ORDERS_ASSET

    timetable = dagbag.get_dag(DRIFT_DAG).timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert isinstance(timetable.timetable, CronTriggerTimetable)
    assert timetable.timetable.expression == "0 4 * * *"
    assert timetable.asset_condition == ORDERS_ASSET
    # The asset graph the alerts' impact is read from: the ETL's load produces what the drift monitor waits on.
    load = dagbag.get_dag("etl_orders").get_task("load")
    assert [outlet.uri for outlet in load.outlets] == [ORDERS_ASSET.uri]
