"""Machine learning for the DAG suite: the order-return model, its registry and its drift monitoring.

One idea per module:
- `features`: one row of features per order, read from the warehouse's `orders` and `customers`;
- `training`: the scikit-learn pipeline and its holdout metrics;
- `quality`: the quality gate a model must pass before it is deployed;
- `registry`: versioned artifacts on disk, the `CURRENT` pointer, rollback;
- `psi`: feature distributions and the population stability index;
- `drift`: the drift threshold, the drift asset and the `model_drift` table.
"""

MODEL_NAME = "return_model"
