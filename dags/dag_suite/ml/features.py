"""Features of the return model: one row per order, from the warehouse's `orders` joined to `customers`.

Only the columns every warehouse of the suite has are read: orders(order_id, customer_id, order_date, amount,
status) and customers(customer_id, country, signup_date). The label is `status == 'returned'`; only orders with a
final outcome (completed or returned) are labelled, cancelled ones never shipped.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dag_suite.warehouse import placeholder

log = logging.getLogger(__name__)

RETURNED = "returned"
LABELLED_STATUSES = ("completed", RETURNED)
UNKNOWN_COUNTRY = "unknown"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Literal["numeric", "categorical"]


FEATURES = (
    Feature("amount", "numeric"),
    Feature("tenure_days", "numeric"),  # days between the customer's signup and the order
    Feature("day_of_week", "categorical"),  # 0 = Monday
    Feature("country", "categorical"),
)
FEATURE_NAMES = tuple(feature.name for feature in FEATURES)


@dataclass(frozen=True)
class OrderFeatures:
    order_id: str
    order_date: date
    status: str
    amount: float
    tenure_days: int
    day_of_week: int
    country: str

    @property
    def labelled(self) -> bool:
        return self.status in LABELLED_STATUSES

    @property
    def label(self) -> int:
        return int(self.status == RETURNED)

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in FEATURE_NAMES]


def as_date(value: Any) -> date | None:
    """A DATE column's value as a date, from SQLite (text) or PostgreSQL (date or timestamp)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def run_as_of(context: dict[str, Any]) -> datetime:
    """The moment a run looks back from: its data interval's end, else its logical date, else when it ran."""
    for key in ("data_interval_end", "logical_date"):
        if context.get(key) is not None:
            return context[key]
    return context["dag_run"].run_after


def window(as_of: datetime, days: int) -> tuple[date, date]:
    """The `days` calendar days before `as_of`'s date: [start, end), end excluded."""
    end = as_of.date()
    return end - timedelta(days=days), end


ORDERS_SQL = (
    "SELECT o.order_id, o.order_date, o.amount, o.status, c.country, c.signup_date "
    "FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id "
    "WHERE o.order_date >= {mark} AND o.order_date < {mark} ORDER BY o.order_id"
)


def load_order_features(hook: Any, start: date, end: date) -> list[OrderFeatures]:
    """Features of the orders dated in [start, end); orders without a date or an amount are left out."""
    sql = ORDERS_SQL.format(mark=placeholder(hook))  # only the dialect's placeholder is interpolated
    records = hook.get_records(sql, parameters=(start.isoformat(), end.isoformat()))
    rows, skipped = [], 0
    for order_id, order_date, amount, status, country, signup_date in records:
        ordered, signed_up = as_date(order_date), as_date(signup_date)
        if ordered is None or amount is None:
            skipped += 1
            continue
        rows.append(
            OrderFeatures(
                order_id=str(order_id),
                order_date=ordered,
                status=str(status or "").lower(),
                amount=float(amount),
                tenure_days=max(0, (ordered - signed_up).days) if signed_up else 0,
                day_of_week=ordered.weekday(),
                country=str(country or UNKNOWN_COUNTRY),
            )
        )
    if skipped:
        log.warning("left out %d orders in [%s, %s) without an order_date or amount", skipped, start, end)
    return rows


def shuffle_labels(rows: list[OrderFeatures], seed: int = 0) -> list[OrderFeatures]:
    """Bad data on purpose (fault switch): statuses shuffled across orders, so labels no longer follow features."""
    order = np.random.default_rng(seed).permutation(len(rows))
    return [dataclasses.replace(row, status=rows[index].status) for row, index in zip(rows, order, strict=True)]


def matrix(rows: list[OrderFeatures]) -> np.ndarray:
    """The model's input: one row per order, columns in FEATURE_NAMES order (object dtype: mixed types)."""
    return np.array([row.values() for row in rows], dtype=object).reshape(len(rows), len(FEATURE_NAMES))


def labels(rows: list[OrderFeatures]) -> np.ndarray:
    return np.array([row.label for row in rows], dtype=int)


CSV_FIELDS = tuple(field.name for field in dataclasses.fields(OrderFeatures))


def write_csv(path: Path, rows: list[OrderFeatures]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(row) for row in rows)
    return path


def read_csv(path: Path) -> list[OrderFeatures]:
    with path.open(newline="") as handle:
        return [
            OrderFeatures(
                order_id=record["order_id"],
                order_date=date.fromisoformat(record["order_date"]),
                status=record["status"],
                amount=float(record["amount"]),
                tenure_days=int(record["tenure_days"]),
                day_of_week=int(record["day_of_week"]),
                country=record["country"],
            )
            for record in csv.DictReader(handle)
        ]
