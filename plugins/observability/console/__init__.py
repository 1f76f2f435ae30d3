"""The on-call console: pages the api-server serves inside the Airflow UI."""
