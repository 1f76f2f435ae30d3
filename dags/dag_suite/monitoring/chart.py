"""The report's chart as PNG bytes: runs per DAG stacked by state, and each DAG's longest run.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global backend switch);
matplotlib is imported when a chart is drawn, not when the DAG file is parsed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

STATE_COLOURS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "running": "#1565c0",
    "queued": "#9e9e9e",
}
OTHER_COLOUR = "#ff8f00"
MAX_DAGS = 30  # beyond that the chart is unreadable: the biggest DAGs by runs are drawn, the table has all


def render_png(dags: Sequence[Mapping[str, Any]], title: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shown = sorted(dags, key=lambda dag: (-dag["runs"], dag["dag_id"]))[:MAX_DAGS][::-1]
    height = 2.5 + 0.35 * max(len(shown), 1)
    figure = Figure(figsize=(11, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    runs_axes, duration_axes = figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    figure.suptitle(title)
    if not shown:
        runs_axes.text(0.5, 0.5, "no DAG runs in this window", ha="center", va="center")
        runs_axes.set_yticks([])
    names = [dag["dag_id"] for dag in shown]
    states = sorted({state for dag in shown for state in dag["by_state"]}, key=_state_order)
    left = [0] * len(shown)
    for state in states:
        counts = [dag["by_state"].get(state, 0) for dag in shown]
        runs_axes.barh(names, counts, left=left, label=state, color=STATE_COLOURS.get(state, OTHER_COLOUR))
        left = [a + b for a, b in zip(left, counts, strict=True)]
    runs_axes.set_xlabel("DAG runs")
    runs_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    runs_axes.set_title("Runs by state")
    if states:
        runs_axes.legend(loc="lower right", fontsize="small")
    durations = [(dag["max_duration_s"] or 0) / 60 for dag in shown]
    duration_axes.barh(names, durations, color="#5e35b1")
    duration_axes.set_xlabel("minutes")
    duration_axes.set_title("Longest run")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _state_order(state: str) -> tuple[int, str]:
    order = list(STATE_COLOURS)
    return (order.index(state) if state in order else len(order), state)
