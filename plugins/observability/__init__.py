"""The Airflow observability plugin: listeners, traces, structured logs and notifications for every DAG."""
