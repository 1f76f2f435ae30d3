"""The StatsD lines a real Airflow 3.3 sends, captured over UDP, all land where exporters/statsd_mapping.yml means.

One run, shared with test_joined_traces.py (the session fixture `airflow_telemetry`, see airflow_telemetry.py): a
private AIRFLOW_HOME on SQLite, the api-server, scheduler, dag-processor and triggerer with StatsD and InfluxDB
tags on, pointed at a UDP socket of the test process. Two @daily DAGs of our own (catchup off, so each gets one
scheduled run at once): one with a task that succeeds and one that fails, one with a single task that succeeds.
The fixture waits until every expected family has arrived, stops everything it started, then these tests apply
statsd_exporter's rules (tests/statsd_mapping_matcher.py) to every line.
"""

from __future__ import annotations

import pytest

from tests.integration.airflow_telemetry import mapped_lines, missing_families
from tests.statsd_mapping_matcher import is_legacy_name, left_to_catch_all, parse_line

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def captured_lines(airflow_telemetry) -> list[str]:
    """Every StatsD line of the shared Airflow run, from `db migrate` until every component stopped."""
    return airflow_telemetry.statsd_lines


def test_airflow_sends_every_expected_family(captured_lines) -> None:
    assert missing_families(captured_lines) == []


def test_every_line_is_one_statsd_exporter_can_parse(captured_lines) -> None:
    bad = []
    for raw in captured_lines:
        try:
            parse_line(raw)
        except ValueError as error:
            bad.append(str(error))
    assert bad == []


def test_every_line_lands_on_the_mapping_meant_for_it(captured_lines) -> None:
    """Legacy names (ids inside the name, per Airflow's registry) are dropped; every other line has its own
    mapping, except the names deliberately left to the catch-all (LEFT_TO_CATCH_ALL, with reasons)."""
    wrong = set()
    for _raw, line, result in mapped_lines(captured_lines):
        if is_legacy_name(line.name):
            if not result.dropped:
                wrong.add(f"legacy {line.name} ({line.metric_type}) is not dropped: {result.mapping}")
        elif result.mapping is None or result.dropped:
            wrong.add(f"{line.name} ({line.metric_type}) is {'dropped' if result.dropped else 'unmapped'}")
        elif result.mapping.catch_all and left_to_catch_all(line.name) is None:
            wrong.add(f"{line.name} ({line.metric_type}) only reaches the catch-all {result.name}")
    assert sorted(wrong) == []


def test_each_prometheus_metric_gets_one_type_and_one_label_set(captured_lines) -> None:
    """statsd_exporter: metrics with the same name must have the same label names (team_name only comes with
    multi-team setups, and is absent here)."""
    shapes: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for _raw, line, result in mapped_lines(captured_lines):
        if result.mapping is not None and not result.dropped and not result.mapping.catch_all:
            shapes.setdefault(result.name, set()).add((line.metric_type, tuple(sorted(result.labels))))
    assert {name: shape for name, shape in shapes.items() if len(shape) > 1} == {}


def test_no_label_is_an_unbounded_id(captured_lines) -> None:
    labels = {
        key for _raw, _line, result in mapped_lines(captured_lines) if not result.dropped for key in result.labels
    }
    assert labels.isdisjoint({"run_id", "job_id", "try_number", "map_index", "ti_id"}), labels


def test_dag_file_parse_duration_is_still_sent_in_seconds_as_milliseconds(captured_lines) -> None:
    """The mapping names it `_kiloseconds` because Airflow 3.3 sends seconds with the ms type. A tiny file parses
    in well under 40 s; a value of 40 or more means Airflow now sends milliseconds (apache/airflow PR 72553):
    rename the metric to airflow_dag_processing_last_duration_seconds and rescale its buckets."""
    values = [
        line.value
        for _raw, line, _result in mapped_lines(captured_lines)
        if line.name == "airflow.dag_processing.last_duration"
    ]
    assert values and max(values) < 40, values
