"""The return model: a scikit-learn pipeline trained on labelled orders, scored on a stratified holdout.

The pickled artifact is the whole pipeline (preparation + classifier): it takes `features.matrix(rows)` as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from airflow.sdk.exceptions import AirflowFailException
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from dag_suite.ml.features import FEATURES

HOLDOUT_FRACTION = 0.25
RANDOM_STATE = 42
MIN_TRAINING_ROWS = 200
MIN_ROWS_PER_CLASS = 20


class NotEnoughTrainingData(AirflowFailException):
    """Too few labelled orders (or too few of one class) to train and validate; retrying would not help."""


def build_pipeline(random_state: int = RANDOM_STATE) -> Pipeline:
    numeric = [index for index, feature in enumerate(FEATURES) if feature.kind == "numeric"]
    categorical = [index for index, feature in enumerate(FEATURES) if feature.kind == "categorical"]
    skewed = Pipeline([("log1p", FunctionTransformer(np.log1p, validate=True)), ("scale", StandardScaler())])
    prepare = ColumnTransformer(
        [("numeric", skewed, numeric), ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    classifier = LogisticRegression(max_iter=1000, random_state=random_state)
    return Pipeline([("prepare", prepare), ("classify", classifier)])


def check_training_data(y: np.ndarray) -> None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if len(y) < MIN_TRAINING_ROWS or min(positives, negatives) < MIN_ROWS_PER_CLASS:
        raise NotEnoughTrainingData(
            f"not enough labelled orders to train: {len(y)} rows ({positives} returned, {negatives} not); "
            f"need at least {MIN_TRAINING_ROWS} rows and {MIN_ROWS_PER_CLASS} of each class. "
            "Check that the warehouse ETL loaded orders for the training window."
        )


def train(x: np.ndarray, y: np.ndarray, random_state: int = RANDOM_STATE) -> tuple[Pipeline, dict[str, Any]]:
    """Fit on (1 - HOLDOUT_FRACTION) of the rows, stratified; metrics are measured on the holdout."""
    check_training_data(y)
    x_train, x_holdout, y_train, y_holdout = train_test_split(
        x, y, test_size=HOLDOUT_FRACTION, random_state=random_state, stratify=y
    )
    model = build_pipeline(random_state).fit(x_train, y_train)
    scores = model.predict_proba(x_holdout)[:, 1]
    metrics = {
        "roc_auc": round(float(roc_auc_score(y_holdout, scores)), 4),
        "average_precision": round(float(average_precision_score(y_holdout, scores)), 4),
        "accuracy": round(float(accuracy_score(y_holdout, scores >= 0.5)), 4),
        "return_rate": round(float(y.mean()), 4),
        "train_rows": len(y_train),
        "holdout_rows": len(y_holdout),
    }
    return model, metrics
