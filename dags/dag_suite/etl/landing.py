"""Where a day's files live: `landing/<ds>/` as the upstream systems deliver them, `staging/<ds>/` once clean.

Files are written atomically (a temporary file, then a rename), so a task killed mid-write never leaves half a
file for the next task to read.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from dag_suite.etl.generator import ORDER_COLUMNS
from dag_suite.paths import folder

CUSTOMERS_FILE = "customers.json"
ORDERS_FILE = "orders.csv"
RATES_FILE = "exchange_rates.json"
CLEAN_CUSTOMERS_FILE = "customers.json"
CLEAN_ORDERS_FILE = "orders.json"


def landing_dir(ds: str) -> Path:
    return folder("landing", ds)


def staging_dir(ds: str) -> Path:
    return folder("staging", ds)


def _write_atomically(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _require(path: Path, writer: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: task {writer} writes it, rerun it for this date")
    return path


def write_json(path: Path, data: Any) -> Path:
    return _write_atomically(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path, writer: str) -> Any:
    return json.loads(_require(path, writer).read_text(encoding="utf-8"))


def write_orders_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ORDER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return _write_atomically(path, buffer.getvalue())


def read_orders_csv(path: Path, writer: str = "extract_orders") -> list[dict[str, str]]:
    with _require(path, writer).open(newline="", encoding="utf-8") as handle:
        return [dict(row) for row in csv.DictReader(handle)]
