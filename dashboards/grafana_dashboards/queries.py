"""Every query of a dashboard's JSON, with the panel it belongs to: what the tests run and the docs list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    datasource: str  # the data source type: prometheus, tempo, loki
    expr: str  # PromQL, TraceQL or LogQL
    instant: bool


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows, rows themselves excluded."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboard: dict[str, Any]) -> Iterator[PanelQuery]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            kind = (target.get("datasource") or panel.get("datasource") or {}).get("type", "")
            yield PanelQuery(
                dashboard=dashboard["uid"],
                panel=panel["title"],
                ref_id=target.get("refId", ""),
                datasource=kind,
                expr=target.get("expr") or target.get("query") or "",
                instant=bool(target.get("instant")),
            )
