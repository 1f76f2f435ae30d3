"""The orders source service the ETL extracts from over HTTP: `airflow-obs source-api` runs it."""

from dag_suite.source_api.server import make_source_api_server

__all__ = ["make_source_api_server"]
