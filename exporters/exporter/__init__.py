"""Prometheus exporter for Apache Airflow 3: reads the metadata DB read-only, at bounded cost per scrape."""
