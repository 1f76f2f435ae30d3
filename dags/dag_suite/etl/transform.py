"""Transform: validate and clean the day's landing files; every bad row is quarantined with a reason.

No row is silently dropped: each one either reaches `staging/<ds>/` clean or goes to the warehouse's
`quarantine` table (ds, source, row_number, reason, raw), where the reason starts with a kind
(`negative_amount: amount -22.88 is below zero`). The counts come back as the task's XCom.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dag_suite.etl import landing
from dag_suite.etl.generator import ORDER_STATUSES
from dag_suite.etl.load import replace_quarantine
from dag_suite.warehouse import warehouse_hook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quarantined:
    source: str
    row_number: int  # 1-based data row of the landing file (the CSV header is not counted)
    reason: str  # "<kind>: <detail>"
    raw: str  # the row as delivered, JSON

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


class _Reject(ValueError):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")


def _quarantine(source: str, row_number: int, reason: str, row: dict[str, Any]) -> Quarantined:
    return Quarantined(source, row_number, reason, json.dumps(row, sort_keys=True))


def clean_customers(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Quarantined]]:
    clean: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        customer_id = (row.get("customer_id") or "").strip()
        name = (row.get("name") or "").strip()
        if not customer_id:
            reason = "missing_customer_id: customer_id is empty"
        elif customer_id in first_row:
            reason = f"duplicate_customer_id: {customer_id} already at row {first_row[customer_id]}"
        elif not name:
            reason = f"missing_name: customer {customer_id} has no name"
        else:
            first_row[customer_id] = number
            clean.append(
                {
                    "customer_id": customer_id,
                    "name": name,
                    "email": (row.get("email") or "").strip() or None,
                    "country": (row.get("country") or "").strip().upper() or None,
                    "signup_date": (row.get("signup_date") or "").strip() or None,
                }
            )
            continue
        quarantined.append(_quarantine("customers", number, reason, row))
    return clean, quarantined


def _timestamp(raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _Reject("unparseable_date", f"ordered_at {raw!r} is not an ISO 8601 timestamp") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _amount(raw: str) -> float:
    try:
        amount = float(raw)
    except (TypeError, ValueError):
        raise _Reject("unparseable_amount", f"amount {raw!r} is not a number") from None
    if not math.isfinite(amount):
        raise _Reject("unparseable_amount", f"amount {raw!r} is not a finite number")
    if amount < 0:
        raise _Reject("negative_amount", f"amount {raw} is below zero")
    return round(amount, 2)


def _clean_order(row: dict[str, Any], customer_ids: set[str], rates: dict[str, float]) -> dict[str, Any]:
    customer_id = (row.get("customer_id") or "").strip()
    if not customer_id:
        raise _Reject("missing_customer_id", "customer_id is empty")
    ordered_at = _timestamp(row.get("ordered_at") or "")
    amount = _amount(row.get("amount") or "")
    currency = (row.get("currency") or "").strip()
    if currency not in rates:
        raise _Reject("unknown_currency", f"currency {currency!r} has no exchange rate (known: {', '.join(rates)})")
    if customer_id not in customer_ids:
        raise _Reject("unknown_customer", f"customer_id {customer_id} is not in the customers file")
    status = (row.get("status") or "").strip().lower()
    if status not in ORDER_STATUSES:
        raise _Reject("unknown_status", f"status {status!r} is not one of {', '.join(ORDER_STATUSES)}")
    return {
        "order_id": row["order_id"].strip(),
        "customer_id": customer_id,
        "ordered_at": ordered_at.isoformat(),
        "order_date": ordered_at.date().isoformat(),
        "amount": amount,
        "currency": currency,
        "amount_usd": round(amount * rates[currency], 2),
        "status": status,
    }


def clean_orders(
    rows: list[dict[str, Any]], customer_ids: set[str], rates: dict[str, float]
) -> tuple[list[dict[str, Any]], list[Quarantined]]:
    """Valid orders, normalised (UTC timestamps, amounts in USD too); the first delivery of an order id wins."""
    clean: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        order_id = (row.get("order_id") or "").strip()
        try:
            if not order_id:
                raise _Reject("missing_order_id", "order_id is empty")
            if order_id in first_row:
                raise _Reject("duplicate_order_id", f"{order_id} already at row {first_row[order_id]}")
            first_row[order_id] = number
            clean.append(_clean_order(row, customer_ids, rates))
        except _Reject as reject:
            quarantined.append(_quarantine("orders", number, str(reject), row))
    return clean, quarantined


def spoil(orders: list[dict[str, Any]], ds: str) -> list[dict[str, Any]]:
    """The `bad_data` fault: a buggy transform that duplicates orders and invents customers."""
    rng = random.Random(f"bad-data:{ds}")  # noqa: S311 (reproducible test data, not security)
    picked = rng.sample(range(len(orders)), min(5, len(orders)))
    duplicates = [dict(orders[i]) for i in picked]
    strays = [
        dict(orders[i], order_id=f"{orders[i]['order_id']}-X", customer_id=f"C9{n:04d}") for n, i in enumerate(picked)
    ]
    return orders + duplicates + strays


def transform_day(ds: str, *, bad_data: bool = False) -> dict[str, Any]:
    """Read landing/<ds>/, write clean rows to staging/<ds>/ and bad rows to the quarantine table; the counts."""
    source = landing.landing_dir(ds)
    raw_customers = landing.read_json(source / landing.CUSTOMERS_FILE, "extract_customers")
    raw_orders = landing.read_orders_csv(source / landing.ORDERS_FILE)
    rates = landing.read_json(source / landing.RATES_FILE, "extract_exchange_rates")["rates"]

    customers, bad_customers = clean_customers(raw_customers)
    orders, bad_orders = clean_orders(raw_orders, {c["customer_id"] for c in customers}, rates)
    if bad_data:
        orders = spoil(orders, ds)
        log.warning("demo fault bad_data: the transform let duplicate orders and unknown customers through")

    quarantined = bad_customers + bad_orders
    replace_quarantine(warehouse_hook(), ds, quarantined)
    staging = landing.staging_dir(ds)
    landing.write_json(staging / landing.CLEAN_CUSTOMERS_FILE, customers)
    landing.write_json(staging / landing.CLEAN_ORDERS_FILE, orders)

    reasons = Counter(q.kind for q in quarantined)
    log.info(
        "transform %s: %d/%d customers and %d/%d orders clean, %d rows quarantined (%s)",
        ds,
        len(customers),
        len(raw_customers),
        len(orders),
        len(raw_orders),
        len(quarantined),
        ", ".join(f"{kind}={n}" for kind, n in sorted(reasons.items())) or "none",
    )
    return {
        "ds": ds,
        "customers": {"received": len(raw_customers), "clean": len(customers), "quarantined": len(bad_customers)},
        "orders": {"received": len(raw_orders), "clean": len(orders), "quarantined": len(bad_orders)},
        "quarantined": len(quarantined),
        "quarantine_reasons": dict(sorted(reasons.items())),
    }
