"""The Prometheus text format (0.0.4), rendered about three times faster than prometheus_client does it.

At 1,000 DAGs a scrape carries ~10,000 series, and prometheus_client's generic renderer (which
re-validates every metric and label name of every sample, for UTF-8 names) takes ~35 ms of a
~90 ms scrape. This renders the same bytes for the common case: names that are valid classic
Prometheus names, no OpenMetrics-only samples. Any metric outside that case is handed to
prometheus_client's own generate_latest, so the output is always what the library would produce;
tests/unit/test_exposition.py checks byte equality on hostile input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

_CLASSIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_OPENMETRICS_ONLY_SUFFIXES = ("_created", "_gsum", "_gcount")
# How prometheus_client names and types a family in the classic text format.
_TYPE_SUFFIX = {"counter": ("_total", "counter"), "info": ("_info", "gauge")}
_TYPE_RENAMES = {"stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


class _One:
    """A registry-shaped wrapper so generate_latest can render a single metric."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> list[Metric]:
        return [self._metric]


def _escape_value(value: str) -> str:
    if "\\" not in value and "\n" not in value and '"' not in value:  # nearly always: no copy needed
        return value
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _renders_fast(metric: Metric) -> bool:
    if not _CLASSIC_NAME.match(metric.name):
        return False
    suffixed = tuple(metric.name + suffix for suffix in _OPENMETRICS_ONLY_SUFFIXES)
    sample_names = {sample.name for sample in metric.samples}
    if any(name.startswith(suffixed) or not _CLASSIC_NAME.match(name) for name in sample_names):
        return False
    label_names = {name for keys in {tuple(sample.labels) for sample in metric.samples} for name in keys}
    return all(_CLASSIC_NAME.match(name) for name in label_names)


def _render_fast(metric: Metric, out: list[str]) -> None:
    suffix, kind = _TYPE_SUFFIX.get(metric.type, ("", _TYPE_RENAMES.get(metric.type, metric.type)))
    name = metric.name + suffix
    documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {name} {documentation}\n# TYPE {name} {kind}\n")
    keys: tuple[str, ...] = ()
    ordered: list[str] = []
    for sample in metric.samples:
        labels = sample.labels
        if labels:
            if tuple(labels) != keys:  # samples of a family share their label names: sort them once
                keys = tuple(labels)
                ordered = sorted(labels)
            pairs = ",".join([f'{key}="{_escape_value(labels[key])}"' for key in ordered])
            head = f"{sample.name}{{{pairs}}}"
        else:
            head = sample.name
        if sample.timestamp is None:
            out.append(f"{head} {floatToGoString(sample.value)}\n")
        else:
            out.append(f"{head} {floatToGoString(sample.value)} {int(float(sample.timestamp) * 1000):d}\n")


def render_text(metrics: Iterable[Metric]) -> bytes:
    """The classic text exposition of `metrics`, byte for byte what prometheus_client.generate_latest gives."""
    out: list[str] = []
    for metric in metrics:
        if _renders_fast(metric):
            _render_fast(metric, out)
        else:
            out.append(generate_latest(_One(metric)).decode("utf-8"))
    return "".join(out).encode("utf-8")
