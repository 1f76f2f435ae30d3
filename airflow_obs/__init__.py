"""The toolkit's one import namespace: every module the package installs is under `airflow_obs`.

The wheel assembles it from the repository's top-level folders, which are the architecture a reader sees
(pyproject's `[tool.hatch.build.targets.wheel.sources]`):

    plugins/observability        -> airflow_obs.observability   the Airflow plugin and the on-call console
    exporters/exporter           -> airflow_obs.exporter        the Prometheus exporter (runs without Airflow)
    alert_rules/alerting         -> airflow_obs.alerting        the alert and recording rules, as code
    runbooks/, alert_rules/*.yml, dashboards/*.json -> package data (airflow_obs.package_data)

In a checkout the same names resolve to those folders: this package's search path is extended with them, the
way a namespace package spans several directories. The checkout's own tools live there too and are never
installed: airflow_obs.grafana_dashboards (dashboards/grafana_dashboards, which writes the dashboards' JSON).
"""

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
_SUBPACKAGE_FOLDERS = ("plugins", "exporters", "alert_rules", "dashboards")


def _is_checkout() -> bool:
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "plugins" / "observability").is_dir()


if _is_checkout():
    __path__ += [str(_CHECKOUT / folder) for folder in _SUBPACKAGE_FOLDERS]  # noqa: F821 (the package's own)
