#!/usr/bin/env bash
# One-shot set-up of the compose stack's Airflow, run by the airflow-init service before any other
# Airflow service starts: migrate the metadata DB and write the UI accounts' passwords.
set -euo pipefail

: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in compose/.env (see .env.example)}"
: "${AIRFLOW_ONCALL_PASSWORD:?set AIRFLOW_ONCALL_PASSWORD in compose/.env (see .env.example)}"

airflow db migrate

# SimpleAuthManager's passwords file ({user: password}), in the airflow-auth volume the api-server mounts.
# It must stay writable: the auth manager opens it read-write. Rewritten on every start, so a password
# changed in .env takes effect with the next `docker compose up`.
python - <<'PY'
import json
import os
from pathlib import Path

path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
passwords = {"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"], "oncall": os.environ["AIRFLOW_ONCALL_PASSWORD"]}
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(passwords) + "\n")
path.chmod(0o600)
print(f"wrote the passwords of {', '.join(passwords)} to {path}")
PY
