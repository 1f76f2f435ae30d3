"""The api-server, built as `airflow api-server` builds it, serves the plugin's task links and Monitoring page.

A real run under dag.test() in the session's SQLite metadata DB; then the REST API's extra-links route and the
plugin's page are called through the app, authenticated as the UI would be (simple auth manager, all admins).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from observability import links
from observability.settings import read_settings
from observability.trace_context import derived_trace_id, hex_trace_id

from tests.conftest import REPO_ROOT

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
    """The api-server's app (simple auth manager) and tokens it signed: an admin's and a user's without a role."""
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "extra-links-test-" * 4)
        purge_cached_app()
        client = TestClient(create_app())
        tokens = {
            role: get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"user-{role}", role=role))
            for role in ("admin", None)
        }
        yield client, tokens
        purge_cached_app()


def extra_links(api, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str]:
    client, tokens = api
    token = tokens["admin"]
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/links"
    response = client.get(path, params={"map_index": map_index}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()["extra_links"]


def test_a_task_instance_offers_a_trace_link_to_its_runs_trace_and_a_grafana_link_to_its_dashboard(api, probe_run):
    settings = read_settings({})

    found = extra_links(api, probe_run.run_id, "plain")

    trace_id = hex_trace_id(derived_trace_id(DAG_ID, probe_run.run_id))  # Airflow's own tracing is off here
    assert found["Trace"] == links.trace_url(settings, trace_id)
    assert trace_id in unquote(found["Trace"])
    grafana = urlsplit(found["Grafana"])
    assert grafana.path == "/d/airflow-dag"
    assert parse_qs(grafana.query) == {"var-dag_id": [DAG_ID], "var-task_id": ["plain"]}


def test_each_mapped_instance_gets_the_same_links_as_its_task(api, probe_run):
    first, second = (extra_links(api, probe_run.run_id, "mapped", index) for index in (0, 1))

    assert first == second
    assert parse_qs(urlsplit(first["Grafana"]).query)["var-task_id"] == ["mapped"]


def test_the_monitoring_page_links_the_dashboard_the_dags_alerts_and_its_latest_trace(api, probe_run):
    client, tokens = api
    settings = read_settings({})

    # The browser in the UI's frame sends the session cookie, as it does to the UI itself.
    client.cookies.set("_token", tokens["admin"])
    try:
        response = client.get(links.MONITORING_VIEW_HREF.replace("{DAG_ID}", quote(DAG_ID, safe="")))
    finally:
        client.cookies.clear()

    assert response.status_code == 200, response.text
    page = response.text.replace("&amp;", "&").replace("&quot;", '"')
    trace_id = hex_trace_id(derived_trace_id(DAG_ID, probe_run.run_id))
    assert f'href="{links.dag_dashboard_url(settings, DAG_ID)}"' in page
    assert f'href="{links.alertmanager_alerts_url(settings, DAG_ID)}"' in page
    assert f'href="{links.trace_url(settings, trace_id)}"' in page
    assert f"Latest trace (run {probe_run.run_id})" in page


def test_the_monitoring_page_says_when_a_dag_has_not_run_yet(api):
    client, tokens = api

    response = client.get(
        "/observability/dags/never_ran/monitoring", headers={"Authorization": f"Bearer {tokens['admin']}"}
    )

    assert response.status_code == 200
    assert "No run yet" in response.text and "Latest trace" not in response.text


def test_the_monitoring_page_refuses_a_caller_without_an_airflow_session_or_without_access_to_the_dag(api):
    client, tokens = api
    page = f"/observability/dags/{DAG_ID}/monitoring"

    anonymous = client.get(page, follow_redirects=False)
    no_role = client.get(page, headers={"Authorization": f"Bearer {tokens[None]}"})

    assert_sent_to_login(anonymous, page)
    assert no_role.status_code == 403


def assert_sent_to_login(response, page: str) -> None:
    """Airflow's login page, which returns to `page` once signed in."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/login"
    assert urlsplit(parse_qs(location.query)["next"][0]).path == page


def get_as(api, role: str | None, path: str):
    client, tokens = api
    client.cookies.set("_token", tokens[role])
    try:
        return client.get(path, follow_redirects=False)
    finally:
        client.cookies.clear()


RUNBOOKS = links.RUNBOOK_PAGES_PATH


def test_every_runbook_is_a_page_of_the_api_server_whose_links_to_other_runbooks_open(api):
    files = sorted(path.stem for path in (REPO_ROOT / "runbooks").glob("*.md") if path.stem != "README")

    index = get_as(api, "admin", f"{RUNBOOKS}/")

    assert index.status_code == 200, index.text
    listed = set(re.findall(r'href="([A-Za-z]+)\.md"', index.text))
    assert listed == set(files), set(files) ^ listed
    page = get_as(api, "admin", f"{RUNBOOKS}/AirflowTaskFailed.md")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>AirflowTaskFailed</h1>" in page.text and "<h2>Diagnosis</h2>" in page.text
    assert '<a href="./">Runbooks</a>' in page.text
    for name in re.findall(r'href="([A-Za-z]+)\.md"', page.text):
        assert get_as(api, "admin", f"{RUNBOOKS}/{name}.md").status_code == 200, name


def test_a_runbook_link_followed_without_a_session_goes_through_airflows_login_and_a_user_without_a_role_is_refused(
    api,
):
    page = f"{RUNBOOKS}/AirflowSchedulerDown.md"

    assert_sent_to_login(api[0].get(page, follow_redirects=False), page)
    assert get_as(api, None, page).status_code == 403


def test_a_runbook_that_does_not_exist_is_a_404_naming_it(api):
    response = get_as(api, "admin", f"{RUNBOOKS}/NoSuchAlert.md")

    assert response.status_code == 404
    assert "no runbook 'NoSuchAlert'" in response.text and "runbooks/<AlertName>.md" in response.text


@pytest.mark.parametrize("name", ["..%2F..%2Fpyproject", "..%2Fdocs%2Falerting", "README%00", ".hidden", "a.b"])
def test_a_runbook_name_that_could_leave_the_runbooks_folder_is_a_404(api, name):
    assert get_as(api, "admin", f"{RUNBOOKS}/{name}.md").status_code == 404
