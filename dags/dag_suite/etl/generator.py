"""Deterministic source data for one day: customers, orders and exchange rates, seeded by the date.

The same date always gives the same rows, so runs, reruns and tests agree. About 2-5% of the rows are bad in
the ways real feeds are bad; `SourceDay.bad_rows` says which rows and why, so tests can check the quarantine.
Standard library only: the source service imports it too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

CUSTOMER_UNIVERSE = 500  # customer ids C00001..C00500; the day's file is a snapshot of the active ones
KNOWN_CURRENCIES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}  # USD per unit, before daily jitter
ORDER_CURRENCY_WEIGHTS = {"USD": 55, "EUR": 30, "GBP": 12, "JPY": 3}
BAD_ORDER_SHARE = 0.035
BAD_ORDER_KINDS = (
    "missing_customer_id",
    "negative_amount",
    "unparseable_date",
    "unknown_currency",
    "duplicate_order_id",
    "unknown_customer",
)
BAD_CUSTOMER_KINDS = ("missing_customer_id", "missing_name")
ORDER_COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "currency", "status")
ORDER_STATUSES = ("completed", "returned", "cancelled")  # the ML DAGs learn to predict "returned"
CUSTOMER_COLUMNS = ("customer_id", "name", "email", "country", "signup_date")

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret", "Linus")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee")
_COUNTRIES = ("US", "DE", "FR", "GB", "JP", "NL", "ES", "IT", "CA", "BR")
_BAD_TIMESTAMPS = ("2026-13-45T25:61:00", "yesterday", "20/11/2026 9am", "")
_BAD_CURRENCIES = ("BTC", "XXX", "EURO", "usd$")


@dataclass(frozen=True)
class BadRow:
    source: str  # "customers" or "orders"
    row_number: int  # 1-based data row in the landing file (CSV header not counted)
    kind: str


@dataclass
class SourceDay:
    ds: str
    customers: list[dict[str, str]]
    orders: list[dict[str, str]]
    rates: dict[str, float]
    bad_rows: list[BadRow] = field(default_factory=list)

    def bad(self, source: str) -> list[BadRow]:
        return [row for row in self.bad_rows if row.source == source]


def parse_ds(value: str) -> date:
    """A YYYY-MM-DD date; ValueError naming the value and the format otherwise."""
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid date {value!r}: expected YYYY-MM-DD, e.g. 2026-11-20") from None


def customer_id(number: int) -> str:
    return f"C{number:05d}"


def customer_record(number: int) -> dict[str, str]:
    """A customer's attributes depend on the customer only, so every day's snapshot agrees."""
    rng = random.Random(f"customer:{number}")  # noqa: S311 (reproducible test data, not security)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "customer_id": customer_id(number),
        "name": f"{first} {last}",
        "email": f"{first}.{last}{number}@example.com".lower(),
        "country": rng.choice(_COUNTRIES),
        "signup_date": (date(2024, 1, 1) + timedelta(days=rng.randrange(700))).isoformat(),
    }


def exchange_rates(ds: str) -> dict[str, float]:
    """USD per unit of each known currency on `ds`."""
    rng = random.Random(f"rates:{parse_ds(ds).isoformat()}")  # noqa: S311 (reproducible test data, not security)
    return {
        code: 1.0 if code == "USD" else round(base * rng.uniform(0.97, 1.03), 6)
        for code, base in KNOWN_CURRENCIES.items()
    }


def _customers(rng: random.Random) -> tuple[list[dict[str, str]], list[tuple[int, str]]]:
    numbers = sorted(rng.sample(range(1, CUSTOMER_UNIVERSE + 1), rng.randint(60, 90)))
    rows = [customer_record(n) for n in numbers]
    bad: list[tuple[int, str]] = []
    for kind in BAD_CUSTOMER_KINDS:  # extra rows, so every order's customer stays valid
        row = customer_record(rng.randint(CUSTOMER_UNIVERSE + 1, 9999))
        row["customer_id" if kind == "missing_customer_id" else "name"] = ""
        index = rng.randrange(len(rows) + 1)
        rows.insert(index, row)
        bad = [(i + 1 if i >= index else i, k) for i, k in bad] + [(index, kind)]
    return rows, bad


def _status(rng: random.Random, day: date, value: float, customer: dict[str, str]) -> str:
    """Returns follow the order: large orders, new customers and some countries return more (a learnable signal)."""
    if rng.random() < 0.04:
        return "cancelled"
    tenure_days = (day - date.fromisoformat(customer["signup_date"])).days
    risk = 0.06 + 0.12 * (value > 100) + 0.10 * (tenure_days < 180) + 0.06 * (customer["country"] in ("BR", "IT"))
    return "returned" if rng.random() < risk else "completed"


def _order(rng: random.Random, day: date, number: int, customers: list[dict[str, str]]) -> dict[str, str]:
    at = datetime.combine(day, time(), UTC) + timedelta(seconds=rng.randrange(86400))
    currency = rng.choices(list(ORDER_CURRENCY_WEIGHTS), weights=list(ORDER_CURRENCY_WEIGHTS.values()))[0]
    value = min(rng.lognormvariate(3.6, 0.8), 5000.0)  # roughly USD
    customer = rng.choice(customers)
    return {
        "order_id": f"O-{day:%Y%m%d}-{number:05d}",
        "customer_id": customer["customer_id"],
        "ordered_at": at.isoformat(),
        "amount": f"{value * (120 if currency == 'JPY' else 1):.2f}",
        "currency": currency,
        "status": _status(rng, day, value, customer),
    }


def _spoil(rng: random.Random, row: dict[str, str], kind: str) -> None:
    if kind == "missing_customer_id":
        row["customer_id"] = ""
    elif kind == "negative_amount":
        row["amount"] = f"-{row['amount']}"
    elif kind == "unparseable_date":
        row["ordered_at"] = rng.choice(_BAD_TIMESTAMPS)
    elif kind == "unknown_currency":
        row["currency"] = rng.choice(_BAD_CURRENCIES)
    elif kind == "unknown_customer":
        row["customer_id"] = f"C9{rng.randrange(10000):04d}"  # beyond the customer universe
    else:
        raise ValueError(f"cannot spoil a row in place with {kind!r}")


def _orders(rng: random.Random, day: date, customers: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    count = rng.randint(240, 360)
    rows = [_order(rng, day, n, customers) for n in range(1, count + 1)]
    kinds = [""] * count  # "" for a good row, else its bad kind
    n_bad = max(len(BAD_ORDER_KINDS), round(count * BAD_ORDER_SHARE))
    plan = [BAD_ORDER_KINDS[i % len(BAD_ORDER_KINDS)] for i in range(n_bad)]
    spoiled = rng.sample(range(count), n_bad)
    duplicates: list[int] = []
    for index, kind in zip(spoiled, plan, strict=True):
        if kind == "duplicate_order_id":
            duplicates.append(index)  # a later re-delivery of this (good) order
        else:
            _spoil(rng, rows[index], kind)
            kinds[index] = kind
    for source in sorted(duplicates, reverse=True):  # inserting after the highest first keeps lower indices valid
        copy = dict(rows[source], amount=f"{float(rows[source]['amount']) + 1:.2f}")
        position = rng.randint(source + 1, len(rows))
        rows.insert(position, copy)
        kinds.insert(position, "duplicate_order_id")
    return rows, kinds


def generate_day(ds: str) -> SourceDay:
    """Everything the upstream systems deliver for `ds` (YYYY-MM-DD), the same on every call."""
    day = parse_ds(ds)
    rng = random.Random(f"orders:{day.isoformat()}")  # noqa: S311 (reproducible test data, not security)
    customers, bad_customers = _customers(rng)
    good = [row for row in customers if row["customer_id"] and row["name"]]
    orders, kinds = _orders(rng, day, good)
    bad_rows = [BadRow("customers", index + 1, kind) for index, kind in sorted(bad_customers)]
    bad_rows += [BadRow("orders", index + 1, kind) for index, kind in enumerate(kinds) if kind]
    return SourceDay(day.isoformat(), customers, orders, exchange_rates(day.isoformat()), bad_rows)
