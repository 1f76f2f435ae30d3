"""The toolkit's Grafana dashboards as code (grafana-foundation-sdk, Grafana 11.6 schema).

`python -m airflow_obs.grafana_dashboards` writes them to dashboards/<uid>.json; `--check` fails on any difference.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_obs.grafana_dashboards import dag, freshness, infra, overview
from grafana_foundation_sdk.models.dashboard import Dashboard

BUILDERS: tuple[Callable[[], Dashboard], ...] = (overview.build, dag.build, infra.build, freshness.build)
