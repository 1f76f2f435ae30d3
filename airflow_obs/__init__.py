"""`airflow-obs`, the toolkit's command line."""
