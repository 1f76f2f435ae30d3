"""Health results as metrics through Airflow's Stats client (StatsD/OTel, whichever the deployment configured).

Names: gauge `airflow_obs.stack_health.<component>` (1 healthy, 0 not) and timing
`airflow_obs.stack_health.<component>.latency` (ms, when the component answered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The Task SDK's Stats: the task runner initialises this one (airflow.observability.stats is the core's copy).
from airflow.sdk.observability.stats import Stats

PREFIX = "airflow_obs.stack_health"


def gauge_name(component: str) -> str:
    return f"{PREFIX}.{component}"


def timing_name(component: str) -> str:
    return f"{PREFIX}.{component}.latency"


def emit(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Emit one gauge per component (and a timing when there is a latency); return the names emitted."""
    names = []
    for result in results:
        component = result["component"]
        Stats.gauge(gauge_name(component), 1 if result["healthy"] else 0)
        names.append(gauge_name(component))
        if result.get("latency_ms") is not None:
            Stats.timing(timing_name(component), float(result["latency_ms"]))
            names.append(timing_name(component))
    return names
