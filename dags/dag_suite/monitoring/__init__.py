"""Monitoring of the toolkit's own stack: health checks, the stack_health table, the daily status report.

One idea per module: `endpoints` (connection id -> URL), `health_checks`, `health_store`, `health_metrics`,
`airflow_api` (REST client), `run_stats` (numbers from DAG runs), `chart`, `report` (the report as data).
"""
