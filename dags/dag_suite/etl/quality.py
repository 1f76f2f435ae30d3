"""Data-quality checks: they gate the load, so bad data never reaches the warehouse or the ML DAGs.

Each check is a pure function over rows and returns a CheckResult; `enforce` raises DataQualityError naming
every failed check and its numbers. DataQualityError fails the task without retries: the data would not change.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from dag_suite.etl import landing
from dag_suite.etl.load import customer_ids
from dag_suite.warehouse import warehouse_hook

log = logging.getLogger(__name__)

EXPECTED_ORDERS = (50, 5_000)  # per day; outside this the feed is broken, not the business
EXPECTED_CUSTOMERS = (10, 10_000)
MAX_QUARANTINE_SHARE = 0.10  # the feed's usual 2-5% bad rows pass; a broken delivery does not
EXAMPLES = 3


class DataQualityError(AirflowFailException):
    """One or more data-quality checks failed; the message names each check and its numbers."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name} {'passed' if self.passed else 'FAILED'}: {self.detail}"


def _examples(values: Iterable[Any]) -> str:
    values = sorted({str(v) for v in values})
    more = f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else ""
    return ", ".join(values[:EXAMPLES]) + more


def check_row_count(table: str, count: int, expected: tuple[int, int]) -> CheckResult:
    low, high = expected
    passed = count > 0 and low <= count <= high
    return CheckResult(f"row_count_{table}", passed, f"{count} {table} rows, expected {low}..{high}")


def check_quarantine_share(
    source: str, received: int, quarantined: int, limit: float = MAX_QUARANTINE_SHARE
) -> CheckResult:
    share = quarantined / received if received else 1.0
    return CheckResult(
        f"quarantine_share_{source}",
        share <= limit,
        f"{quarantined} of {received} {source} rows quarantined ({share:.1%}), at most {limit:.0%} expected",
    )


def check_not_null(table: str, rows: list[dict[str, Any]], columns: Iterable[str]) -> CheckResult:
    nulls = {c: sum(1 for row in rows if row.get(c) in (None, "")) for c in columns}
    bad = {c: n for c, n in nulls.items() if n}
    detail = ", ".join(f"{n} rows with null {c}" for c, n in bad.items()) or f"no nulls in {', '.join(nulls)}"
    return CheckResult(f"not_null_{table}", not bad, f"{detail} ({len(rows)} {table} rows)")


def check_unique(table: str, rows: list[dict[str, Any]], key: str) -> CheckResult:
    counts = Counter(row.get(key) for row in rows)
    duplicated = {value: n for value, n in counts.items() if n > 1}
    detail = (
        f"{len(duplicated)} {key} values appear more than once ({sum(duplicated.values())} rows) "
        f"among {len(rows)} {table} rows, e.g. {_examples(duplicated)}"
        if duplicated
        else f"{len(rows)} {table} rows, all {key} values unique"
    )
    return CheckResult(f"unique_{key}s", not duplicated, detail)


def check_referential_integrity(orders: list[dict[str, Any]], known_customer_ids: set[str]) -> CheckResult:
    orphans = [row for row in orders if row.get("customer_id") not in known_customer_ids]
    detail = (
        f"{len(orphans)} of {len(orders)} orders reference customers that do not exist, "
        f"e.g. {_examples(row.get('customer_id') for row in orphans)}"
        if orphans
        else f"all {len(orders)} orders reference existing customers"
    )
    return CheckResult("referential_integrity", not orphans, detail)


def check_freshness(orders: list[dict[str, Any]], ds: str) -> CheckResult:
    dates = [row["order_date"] for row in orders if row.get("order_date")]
    latest = max(dates, default=None)
    return CheckResult("freshness", latest == ds, f"latest order_date is {latest or 'none'}, expected {ds}")


def evaluate(
    ds: str,
    customers: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    known_customer_ids: set[str],
    counts: dict[str, Any] | None = None,
) -> list[CheckResult]:
    """Every check on one day's clean batch; `counts` is the transform's XCom (for the quarantine shares)."""
    results = [
        check_row_count("customers", len(customers), EXPECTED_CUSTOMERS),
        check_row_count("orders", len(orders), EXPECTED_ORDERS),
        check_not_null("customers", customers, ("customer_id", "name")),
        check_not_null("orders", orders, ("order_id", "customer_id", "order_date", "amount", "currency", "status")),
        check_unique("orders", orders, "order_id"),
        check_unique("customers", customers, "customer_id"),
        check_referential_integrity(orders, known_customer_ids | {c["customer_id"] for c in customers}),
        check_freshness(orders, ds),
    ]
    for source in ("customers", "orders"):
        if counts and source in counts:
            results.append(check_quarantine_share(source, counts[source]["received"], counts[source]["quarantined"]))
    return results


def enforce(ds: str, results: list[CheckResult]) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise DataQualityError(
            f"{len(failed)} data-quality check(s) failed for {ds}: " + "; ".join(str(r) for r in failed)
        )


def check_day(ds: str, counts: dict[str, Any] | None = None) -> dict[str, str]:
    """Run every check on staging/<ds>/ against the warehouse's customers; DataQualityError on any failure."""
    staging = landing.staging_dir(ds)
    customers = landing.read_json(staging / landing.CLEAN_CUSTOMERS_FILE, "transform")
    orders = landing.read_json(staging / landing.CLEAN_ORDERS_FILE, "transform")
    results = evaluate(ds, customers, orders, customer_ids(warehouse_hook()), counts)
    for result in results:
        log.info("%s", result)
    enforce(ds, results)
    return {r.name: r.detail for r in results}
