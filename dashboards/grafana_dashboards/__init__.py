"""The toolkit's Grafana dashboards as code (grafana-foundation-sdk, Grafana 11.6 schema).

`python -m grafana_dashboards` writes them to dashboards/<uid>.json; `--check` fails on any difference.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.models.dashboard import Dashboard

from grafana_dashboards import dag, freshness, infra, overview

BUILDERS: tuple[Callable[[], Dashboard], ...] = (overview.build, dag.build, infra.build, freshness.build)
