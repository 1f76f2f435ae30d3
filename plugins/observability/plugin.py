"""The AirflowPlugin that registers the toolkit with Airflow. [4/7] adds listeners, [6/7] views and links."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class ObservabilityPlugin(AirflowPlugin):
    name = "observability"
