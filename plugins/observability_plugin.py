"""Plugins-folder entry of the observability plugin, for deployments that copy `plugins/` instead of installing.

When the package is installed, Airflow loads the plugin through the `airflow.plugins` entry point; exposing
the class here as well would register it twice (Airflow skips the second one and reports it as an import
error), so this module then exposes nothing. Airflow puts the plugins folder on sys.path, which makes
`observability` importable as a package either way, and imported once per process.
"""

from importlib.metadata import entry_points

ENTRY_POINT = "observability.plugin:ObservabilityPlugin"

if not any(ep.value == ENTRY_POINT for ep in entry_points(group="airflow.plugins")):
    from observability.plugin import ObservabilityPlugin  # noqa: F401  (found by Airflow's plugin loader)
