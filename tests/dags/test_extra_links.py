"""The api-server, built as `airflow api-server` builds it, serves the plugin's task links.

A real run under dag.test() in the session's SQLite metadata DB; then the REST API's extra-links route is called
through the app, authenticated as the UI would be (simple auth manager).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from airflow_obs.observability import links
from airflow_obs.observability.settings import read_settings
from airflow_obs.observability.trace_context import derived_trace_id, hex_trace_id

from tests.dags.api_server import api_server

DAG_ID = "obs.links-probe"  # a dot and a dash: ids the UI and Grafana must carry intact


def build_probe_dag():
    """`plain`, and `mapped` over two inputs; written to the metadata DB as the dag processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    def noop(*args):
        return None

    with DAG(DAG_ID, schedule=None) as dag:
        PythonOperator(task_id="plain", python_callable=noop)
        PythonOperator.partial(task_id="mapped", python_callable=noop).expand(op_args=[[1], [2]])
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(Path(__file__).parent / "no-such-folder"), collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag


@pytest.fixture(scope="module")
def probe_run(airflow_db):
    dag_run = build_probe_dag().test()
    assert dag_run.state == "success"
    return dag_run


@pytest.fixture(scope="module")
def api(probe_run):
    yield from api_server("extra-links-test-" * 4)


def extra_links(api, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str]:
    client, token = api.client, api.tokens["admin"]
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/links"
    response = client.get(path, params={"map_index": map_index}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()["extra_links"]


def test_a_task_instance_offers_a_trace_link_to_its_runs_trace_and_a_link_to_its_dashboard_in_grafana(
    api, probe_run, plugin_env
):
    plugin_env(AIRFLOW__OBSERVABILITY__GRAFANA_URL="https://grafana.example.com")
    settings = read_settings({"AIRFLOW__OBSERVABILITY__GRAFANA_URL": "https://grafana.example.com"})

    found = extra_links(api, probe_run.run_id, "plain")

    trace_id = hex_trace_id(derived_trace_id(DAG_ID, probe_run.run_id))  # Airflow's own tracing is off here
    assert found["Trace"] == links.trace_url(settings, trace_id)
    assert trace_id in unquote(found["Trace"])
    grafana = urlsplit(found["Dashboard"])
    assert grafana.netloc == "grafana.example.com" and grafana.path == "/d/airflow-dag"
    assert parse_qs(grafana.query) == {"var-dag_id": [DAG_ID], "var-task_id": ["plain"]}


def test_without_grafana_the_task_links_open_the_consoles_dag_page_and_trace_page(api, probe_run):
    found = extra_links(api, probe_run.run_id, "plain")

    trace_id = hex_trace_id(derived_trace_id(DAG_ID, probe_run.run_id))
    assert urlsplit(found["Dashboard"]).path == f"/observability/dags/{DAG_ID}/monitoring"
    assert urlsplit(found["Trace"]).path == f"/observability/traces/{trace_id}"


def test_each_mapped_instance_gets_the_same_links_as_its_task(api, probe_run, plugin_env):
    plugin_env(AIRFLOW__OBSERVABILITY__GRAFANA_URL="https://grafana.example.com")
    first, second = (extra_links(api, probe_run.run_id, "mapped", index) for index in (0, 1))

    assert first == second
    assert parse_qs(urlsplit(first["Dashboard"]).query)["var-task_id"] == ["mapped"]
