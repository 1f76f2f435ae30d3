"""The orders source service the ETL extracts from over HTTP: `python -m local_stack source-api` runs it."""

from dag_suite.source_api.server import make_source_api_server

__all__ = ["make_source_api_server"]
