"""The toolkit's Prometheus rules, as code: thresholds, the alert catalogue and its rendering to rule files."""
