"""`python -m alerting`: rewrite the committed rule files from the catalogue (defaults, no environment)."""

from alerting.render import RULES_DIR, committed_rule_files

for name, text in committed_rule_files().items():
    (RULES_DIR / name).write_text(text)
    print(f"wrote {RULES_DIR / name}")
