"""What differs between the Airflow versions the plugin supports (3.1 to 3.3), in one place.

Airflow 3.2 moved these into the Task SDK; 3.1 still has them in the core. The newer home comes first, so the
deprecated shims of 3.2+ are never imported.
"""

from __future__ import annotations

try:
    from airflow.sdk.observability.stats import Stats
except ImportError:  # Airflow 3.1
    from airflow.stats import Stats

try:
    from airflow.sdk.exceptions import AirflowNotFoundException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowNotFoundException

__all__ = ["AirflowNotFoundException", "Stats"]
