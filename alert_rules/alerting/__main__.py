"""`python -m airflow_obs.alerting`: rewrite the committed rule files from the catalogue (defaults, no environment)."""

from airflow_obs.alerting.render import committed_rule_files

from airflow_obs.package_data import RULES_DIR

for name, text in committed_rule_files().items():
    (RULES_DIR / name).write_text(text)
    print(f"wrote {RULES_DIR / name}")
