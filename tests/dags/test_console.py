"""The on-call console, served by the api-server's app: a DAG's page, the top-level page, a trace, the runbooks.

Real runs under dag.test() in the session's SQLite metadata DB (one that succeeds, one whose `load` fails for good),
a real Alertmanager holding alerts about the DAG (one firing, one silenced), and the app authenticated as the UI's
browser is (the session cookie). Prometheus is not configured here: the page says it has no baseline to compare with.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import pytest
from airflow_obs.observability import links
from airflow_obs.observability.settings import read_settings
from airflow_obs.observability.trace_context import derived_trace_id, hex_trace_id
from airflow_obs.observability.trace_store import RUN_ID, read_spans

from tests.conftest import REPO_ROOT, free_port
from tests.dags.api_server import api_server, assert_sent_to_login
from tests.running_alertmanager import running_alertmanager
from tests.running_prometheus import ODD_ASSET, running_prometheus

DAG_ID = "obs.console-probe"
OTHER_DAG = "obs.console-other"  # a DAG an alert is about, which no user here may be shown without access
RUNBOOKS = links.RUNBOOK_PAGES_PATH


def build_console_probe(dag_id: str = DAG_ID):
    """`extract`, then `load`, which fails (retries=0) when the run's conf says so; written to the metadata DB."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    def load(**context):
        if context["params"].get("fail"):
            raise ValueError("warehouse refused the batch: 12 rows with a null customer_id")

    with DAG(dag_id, schedule="@daily", params={"fail": False}, default_args={"retries": 0}, catchup=False) as dag:
        PythonOperator(task_id="extract", python_callable=lambda: None) >> PythonOperator(
            task_id="load", python_callable=load
        )
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(REPO_ROOT / "no-such-folder"), collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag


@pytest.fixture(scope="module")
def runs(airflow_db, tmp_path_factory):
    """A run that succeeds, then one that fails, each with its trace in a JSONL store of its own."""
    traces = tmp_path_factory.mktemp("traces") / "traces.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__OBSERVABILITY__TRACES_FILE", str(traces))
        from airflow_obs.observability.settings import settings

        settings.cache_clear()
        ok = build_console_probe().test(logical_date=datetime(2026, 3, 1, tzinfo=UTC), run_conf={"fail": False})
        failed = build_console_probe().test(logical_date=datetime(2026, 3, 2, tzinfo=UTC), run_conf={"fail": True})
        settings.cache_clear()
    assert (ok.state, failed.state) == ("success", "failed")
    return {"ok": ok, "failed": failed, "traces": traces}


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    with running_alertmanager(tmp_path_factory.mktemp("console-alertmanager")) as running:
        running.post(
            {
                "labels": {
                    "alertname": "AirflowTaskFailed",
                    "dag_id": DAG_ID,
                    "task_id": "load",
                    "severity": "critical",
                    "team": "data-platform",
                    "error_fingerprint": "5f0c1e2d3a4b",
                },
                "annotations": {
                    "summary": "Task load failed for good.",
                    "log_url": "http://127.0.0.1:8080/dags/x/runs/y/tasks/load?try_number=1",
                },
            },
            {
                "labels": {
                    "alertname": "AirflowDagMissedSchedule",
                    "dag_id": DAG_ID,
                    "severity": "warning",
                    "team": 'ops <b>"core"</b>',
                },
                "annotations": {"summary": "<script>alert('x')</script> & more"},
            },
            {
                "labels": {"alertname": "AirflowDagRunOverBaseline", "dag_id": DAG_ID, "severity": "warning"},
                "annotations": {"summary": "Slow run."},
            },
            {
                "labels": {"alertname": "AirflowDagLastRunFailed", "dag_id": OTHER_DAG, "severity": "warning"},
                "annotations": {"summary": "Another DAG failed."},
            },
            {
                # About no DAG (a component), and not a cause that would mute the DAG alerts.
                "labels": {"alertname": "HostDiskSpaceLow", "severity": "warning", "instance": "worker-1"},
                "annotations": {"summary": "Disk almost full."},
            },
        )
        running.silence(("alertname", "AirflowDagRunOverBaseline"), ("dag_id", DAG_ID))
        yield running


ODD_RUN = "manual~odd:run+1.2"  # what Airflow's run id pattern allows beyond letters and digits


@pytest.fixture(scope="module")
def server(runs, alertmanager):
    for running in api_server("console-test-secret-" * 3):
        # A queued run older than the two others, with an id whose characters must be encoded in links.
        created = running.client.post(
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            json={"dag_run_id": ODD_RUN, "logical_date": "2026-02-01T00:00:00Z", "run_after": "2026-02-01T00:00:00Z"},
            headers={"Authorization": f"Bearer {running.tokens['admin']}"},
        )
        assert created.status_code == 200, created.text
        yield running


@pytest.fixture
def console_env(plugin_env, runs, alertmanager):
    plugin_env(
        AIRFLOW__OBSERVABILITY__ALERTMANAGER_URL=alertmanager.url,
        AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL=alertmanager.url,
        AIRFLOW__OBSERVABILITY__TRACES_FILE=str(runs["traces"]),
    )
    return plugin_env


def console_dag_path(dag_id: str) -> str:
    return links.MONITORING_VIEW_HREF.replace("{DAG_ID}", quote(dag_id, safe=""))


def dag_page(server, role="admin"):
    return server.page(console_dag_path(DAG_ID), role)


def unescaped(html: str) -> str:
    return html.replace("&amp;", "&").replace("&#34;", '"').replace("&quot;", '"').replace("&#39;", "'")


def test_a_dags_page_shows_its_firing_alert_with_runbook_and_silence_and_the_silenced_one_apart(server, console_env):
    response = dag_page(server)

    assert response.status_code == 200, response.text
    page = unescaped(response.text)
    firing, _, muted = page.partition("Silenced or muted by a cause")
    assert "AirflowTaskFailed" in firing and "Task load failed for good." in firing
    assert 'href="http://127.0.0.1:8080/observability/runbooks/AirflowTaskFailed.md"' in firing
    silence = re.search(r'href="([^"]*/#/silences/new\?filter=[^"]*)"', firing).group(1)
    assert (
        unquote(silence.split("filter=", 1)[1]) == f'{{alertname="AirflowTaskFailed",dag_id="{DAG_ID}",task_id="load"}}'
    )
    assert 'href="http://127.0.0.1:8080/dags/x/runs/y/tasks/load?try_number=1"' in firing
    assert "AirflowDagRunOverBaseline" in muted and "AirflowDagRunOverBaseline" not in firing
    assert OTHER_DAG not in page
    # The error's fingerprint, which failures of one cause share (and are grouped by), beside the alert.
    assert "fingerprint 5f0c1e2d3a4b" in firing


def impact_section(page: str) -> str:
    return page.split('<section id="impact">')[1].split("</section>")[0]


def test_a_dags_page_shows_whom_it_affects_and_the_failing_dag_it_waits_on(server, console_env, tmp_path):
    with running_prometheus(tmp_path) as prometheus:
        console_env(AIRFLOW__OBSERVABILITY__PROMETHEUS_URL=prometheus.url)
        producer = impact_section(unescaped(server.page(console_dag_path("etl_orders")).text))
        consumer = impact_section(unescaped(server.page(console_dag_path("ml_monitor_drift")).text))

    affected = re.findall(r'data-affected-dag-id="([^"]+)"', producer)
    assert affected == ["adhoc_report", "ml_monitor_drift", "ml_train_return_model"]  # what the pages list
    assert "<td>ml</td><td>ml-eng</td><td>warehouse://orders</td>" in producer
    assert f"<td>{ODD_ASSET}</td>" in producer
    assert "and 42 more DAGs downstream." in producer
    assert f'href="{links.console_dag_url(read_settings({}), "ml_monitor_drift")}"' in producer
    assert "Upstream failing:" in consumer and ">etl_orders</a> (via warehouse://orders)" in consumer


def test_a_dags_page_says_when_the_impact_cannot_be_read(server, console_env):
    console_env(AIRFLOW__OBSERVABILITY__PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}")

    section = impact_section(unescaped(dag_page(server).text))

    assert "Impact unknown: Prometheus at http://127.0.0.1:" in section and "could not answer" in section


def test_a_dags_page_charts_its_recent_runs_and_counts_the_failed_task_with_a_link_to_its_try(
    server, console_env, runs
):
    page = unescaped(dag_page(server).text)

    chart = json.loads(re.search(r'<script type="application/json" id="durations-data">(.*?)</script>', page).group(1))
    assert chart["labels"] == [ODD_RUN, runs["ok"].run_id, runs["failed"].run_id]  # oldest first
    assert chart["states"] == ["queued", "success", "failed"]
    assert chart["seconds"][0] is None and all(s >= 0 for s in chart["seconds"][1:])  # a queued run has not started
    assert chart["baseline"] is None and "no Prometheus configured (AIRFLOW__OBSERVABILITY__PROMETHEUS_URL)" in page
    assert '<script src="/observability/static/chart.umd.min.js"></script>' in page
    settings = read_settings({})
    failed_try = links.task_log_url(settings, DAG_ID, runs["failed"].run_id, "load", 1)
    assert re.search(rf'<td>load</td><td>1</td><td>0</td>\s*<td><a href="{re.escape(failed_try)}">', page), page
    assert f'href="{links.dag_run_url(settings, DAG_ID, runs["ok"].run_id)}"' in page
    assert "Next run due" in page and "paused" not in page.split('id="freshness"')[1].split("</section>")[0]


def test_a_dags_page_draws_its_latest_runs_trace_from_the_trace_store(server, console_env, runs):
    page = unescaped(dag_page(server).text)

    trace = page.split('id="trace"')[1]
    assert runs["failed"].run_id in trace
    spans = [span for span in read_spans(runs["traces"]) if span.attributes.get(RUN_ID) == runs["failed"].run_id]
    assert spans, "the failed run wrote no span to the store"
    names = re.findall(r'<div class="label"[^>]*>([^<]+)</div>', trace)
    assert sorted(names) == sorted(span.name for span in spans)
    assert "ValueError: warehouse refused the batch" in trace and 'class="bar error"' in trace


def test_the_trace_page_opens_any_stored_trace_and_refuses_an_id_that_is_not_one(server, console_env, runs):
    trace_id = hex_trace_id(derived_trace_id(DAG_ID, runs["ok"].run_id))

    shown = server.page(f"/observability/traces/{trace_id}")
    missing = server.page(f"/observability/traces/{'0' * 31}1")
    bad = server.page("/observability/traces/not-a-trace")

    assert shown.status_code == 200 and trace_id in shown.text and 'class="waterfall"' in shown.text
    assert missing.status_code == 200 and "is not among the newest spans" in missing.text
    assert bad.status_code == 400 and "'not-a-trace'" in bad.text


def test_the_top_level_page_groups_firing_alerts_by_team_and_lists_the_failing_dag_with_its_failed_try(
    server, console_env, runs
):
    response = server.page(links.CONSOLE_VIEW_HREF, role="viewer")

    assert response.status_code == 200, response.text
    page = unescaped(response.text)
    firing = page.split('id="firing"')[1].split("</section>")[0]
    assert re.search(r"<h3>data-platform .*?AirflowTaskFailed", firing, re.S)
    assert re.search(r"<h3>no team .*?HostDiskSpaceLow", firing, re.S)
    assert "AirflowDagRunOverBaseline" not in firing and "1 more silenced" in firing
    failing = page.split('id="failing"')[1].split("</section>")[0]
    assert f'href="{links.console_dag_url(read_settings({}), DAG_ID)}"' in failing
    assert "load try 1" in failing
    components = page.split('id="components"')[1].split("</section>")[0]
    assert "metadatabase" in components and "scheduler" in components


def test_text_from_alertmanager_and_ids_with_odd_characters_render_escaped(server, console_env):
    page = dag_page(server).text
    top = server.page(links.CONSOLE_VIEW_HREF).text

    for html in (page, top):
        assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert "<b>" not in top and "ops &lt;b&gt;&#34;core&#34;&lt;/b&gt;" in top
    assert f'href="{links.dag_run_url(read_settings({}), DAG_ID, ODD_RUN)}"' in page
    assert "/runs/manual~odd%3Arun%2B1.2" in page


def test_a_trace_store_that_cannot_be_read_leaves_the_rest_of_the_dags_page_working(server, console_env):
    console_env(AIRFLOW__OBSERVABILITY__TEMPO_URL="http://127.0.0.1:9")

    response = dag_page(server)

    assert response.status_code == 200
    trace = response.text.split('id="trace"')[1]
    assert "No trace to show: cannot reach Tempo at http://127.0.0.1:9/api/traces/" in trace
    assert "AirflowTaskFailed" in response.text.split('id="alerts"')[1] and 'id="durations"' in response.text


def test_every_page_still_opens_when_alertmanager_cannot_be_reached(server, console_env):
    console_env(
        AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL="http://127.0.0.1:9",
        AIRFLOW__OBSERVABILITY__ALERTMANAGER_URL="http://127.0.0.1:9",
    )

    dag = dag_page(server)
    top = server.page(links.CONSOLE_VIEW_HREF)

    for response in (dag, top):
        assert response.status_code == 200
        assert "Alertmanager at http://127.0.0.1:9 could not be read" in response.text


def test_the_console_sends_a_browser_without_a_session_to_the_login_and_refuses_a_user_without_a_role(server):
    for path in (links.CONSOLE_VIEW_HREF, f"/observability/dags/{quote(DAG_ID)}/monitoring", f"{RUNBOOKS}/"):
        assert_sent_to_login(server.anonymous(path), path)
        assert server.page(path, role=None).status_code == 403


def test_the_read_only_account_sees_a_dags_page(server, console_env):
    assert dag_page(server, role="viewer").status_code == 200


# --- runbooks -------------------------------------------------------------------------------------------------
def test_every_runbook_is_a_page_of_the_api_server_whose_links_to_other_runbooks_open(server):
    files = sorted(path.stem for path in (REPO_ROOT / "runbooks").glob("*.md") if path.stem != "README")

    index = server.page(f"{RUNBOOKS}/")

    assert index.status_code == 200, index.text
    listed = set(re.findall(r'href="([A-Za-z]+)\.md"', index.text))
    assert listed == set(files), set(files) ^ listed
    page = server.page(f"{RUNBOOKS}/AirflowTaskFailed.md", role="viewer")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>AirflowTaskFailed</h1>" in page.text and "<h2>Diagnosis</h2>" in page.text
    assert '<a href="./">Runbooks</a>' in page.text and "/observability/static/console.css" in page.text
    for name in re.findall(r'href="([A-Za-z]+)\.md"', page.text):
        assert server.page(f"{RUNBOOKS}/{name}.md").status_code == 200, name


def test_a_runbook_that_does_not_exist_is_a_404_naming_it(server):
    response = server.page(f"{RUNBOOKS}/NoSuchAlert.md")

    assert response.status_code == 404
    assert "no runbook 'NoSuchAlert'" in response.text and "runbooks/<AlertName>.md" in response.text


@pytest.mark.parametrize("name", ["..%2F..%2Fpyproject", "..%2Fdocs%2Falerting", "README%00", ".hidden", "a.b"])
def test_a_runbook_name_that_could_leave_the_runbooks_folder_is_a_404(server, name):
    assert server.page(f"{RUNBOOKS}/{name}.md").status_code == 404
