# The two commands of the README: `make up` (the whole stack on loopback) and `make test` (every test).
SHELL := /bin/bash
VENV_BIN := .venv/bin
PYTEST := $(VENV_BIN)/pytest
# What the wheel installs (pyproject's wheel sources): it must run on Python 3.10, the oldest requires-python allows.
SHIPPED_CODE := airflow_obs plugins/observability exporters/exporter alert_rules/alerting

.DEFAULT_GOAL := help
.PHONY: help bootstrap up down status test test-unit test-dags test-integration lint bench incident

help:
	@echo "make up      start Airflow, the exporter, Prometheus, Alertmanager and the alert captures on loopback"
	@echo "make down    stop everything 'make up' started (data is kept in .stack/)"
	@echo "make status  state and health of each component"
	@echo "make test    lint, fast unit tests, then integration tests against real components"
	@echo "make incident SCENARIO=<name>  break the running stack on purpose and show the alert arriving (SCENARIO=list)"
	@echo "make bench   plugin time per task event, exporter scrape cost vs a naive exporter (100k/1M/5M task instances), final failure to first Slack message (through Alertmanager and direct), the console's load time, fault-to-notification time per incident scenario; updates docs/benchmarks.md; tasks/min with 1 and 2 Celery workers (docs/scaling.md)"

bootstrap:
	@local_stack/bootstrap.sh

up: bootstrap
	@$(VENV_BIN)/python -m local_stack up

down:
	@if [ -x $(VENV_BIN)/python ]; then $(VENV_BIN)/python -m local_stack down; else echo "nothing to stop (no .venv)"; fi

status:
	@$(VENV_BIN)/python -m local_stack status

# Rehearse an incident on the running `make up` stack: the alert as it reaches Slack, email and the pager.
SCENARIO ?= list
incident:
	@$(VENV_BIN)/python -m local_stack incident $(SCENARIO)

lint: bootstrap
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/vermin --quiet --no-tips --violations --eval-annotations -t=3.10- $(SHIPPED_CODE)

test-unit: bootstrap
	$(PYTEST) tests/unit tests/exporter

# Each DAG runs end to end with dag.test() against a real (SQLite) metadata DB.
test-dags: bootstrap
	$(PYTEST) tests/dags

# Against real components, the console in a real browser (chromium, installed here only for the tests).
test-integration: bootstrap
	@local_stack/bootstrap.sh local_stack/test-packages.txt
	$(PYTEST) tests/integration

# Fast first: a lint or unit failure stops before the slow integration tests start.
test: lint test-unit test-dags test-integration

# Minutes, not seconds: loads 5M task instances into a throwaway PostgreSQL. Run it alone on the machine.
bench: bootstrap
	$(VENV_BIN)/python -m bench.plugin_bench --write-docs
	$(VENV_BIN)/python -m bench.exporter_bench --write-docs
	$(VENV_BIN)/python -m bench.paging_bench --write-docs
	$(VENV_BIN)/python -m bench.console_bench --write-docs
	$(VENV_BIN)/python -m bench.incident_bench --write-docs
	$(VENV_BIN)/python -m bench.scaling_bench --write-docs
