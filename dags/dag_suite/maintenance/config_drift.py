"""Compare important settings of the running Airflow with the committed baseline (expected_config.yml).

In a task, `airflow.sdk.conf` reads airflow.cfg and AIRFLOW__* variables like the other components do; only
`[database] sql_alchemy_conn` is rewritten in task processes (see metadata_db), and the baseline does not list it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

BASELINE = Path(__file__).with_name("expected_config.yml")
_MISSING = "<unset>"


def load_baseline(path: Path = BASELINE) -> dict[str, Any]:
    """{"section.key": expected} from the YAML file."""
    data = yaml.safe_load(path.read_text()) or {}
    return {f"{section}.{key}": value for section, keys in data.items() for key, value in (keys or {}).items()}


def _typed(conf, section: str, key: str, like: Any) -> Any:
    raw = conf.get(section, key, fallback=None)
    if raw is None:
        return _MISSING
    if isinstance(like, bool):
        try:
            return conf.getboolean(section, key)
        except Exception:  # not a boolean at all: report the raw text
            return raw
    if isinstance(like, int):
        try:
            return conf.getint(section, key)
        except Exception:
            return raw
    return str(raw).strip()


def find_drift(baseline: dict[str, Any], conf) -> list[dict[str, Any]]:
    """One entry per setting whose actual value is not the expected one (or not one of the expected ones)."""
    drift = []
    for name, expected in sorted(baseline.items()):
        section, key = name.split(".", 1)
        allowed = expected if isinstance(expected, list) else [expected]
        actual = _typed(conf, section, key, allowed[0])
        if actual not in [a if isinstance(a, bool | int) else str(a) for a in allowed]:
            drift.append({"key": name, "expected": expected, "actual": actual})
    return drift


def describe(drift: dict[str, Any]) -> str:
    expected = drift["expected"]
    wanted = " or ".join(map(repr, expected)) if isinstance(expected, list) else repr(expected)
    return f"config drift: [{drift['key'].replace('.', '] ', 1)} expected {wanted}, actual {drift['actual']!r}"
