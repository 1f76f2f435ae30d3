"""Benchmarks: a synthetic Airflow history, a naive baseline exporter, and the scrape-cost harness."""
