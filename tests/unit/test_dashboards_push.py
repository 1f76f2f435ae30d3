"""`airflow-obs dashboards push` against a stand-in Grafana on loopback that records every API call it gets.

The stand-in answers as Grafana's HTTP API does (folders, POST /api/dashboards/db, 401 on a bad token), so the
real grafana-client makes real requests; Grafana itself cannot run here.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from airflow_obs.cli import main
from airflow_obs.dashboards_push import PushError, load_dashboards, map_datasources, parse_datasource_uids, push
from tests.conftest import REPO_ROOT, free_port

TOKEN = "glsa_test-token-0123456789abcdef"  # noqa: S105 - the stand-in Grafana's only valid token


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    body: object


@dataclass
class FakeGrafana:
    """Grafana's folder and dashboard API in memory; `forbidden` paths answer 403, `html` makes it not Grafana."""

    folders: dict[str, str] = field(default_factory=dict)  # uid -> title
    forbidden: set[str] = field(default_factory=set)
    html: bool = False
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    def handle(self, method: str, path: str, authorization: str | None, body: object) -> tuple[int, object]:
        self.calls.append(Call(method, path, authorization, body))
        if self.html:
            return 200, "<html>not grafana</html>"
        if authorization != f"Bearer {TOKEN}":
            return 401, {"message": "Invalid API key"}
        if path in self.forbidden:
            return 403, {"message": "You'll need additional permissions to perform this action."}
        route = path.split("?")[0]
        if route == "/api/frontend/settings":
            return 200, {"buildInfo": {"version": "11.6.0"}}
        if route == "/api/folders" and method == "GET":
            return 200, [{"uid": uid, "title": title} for uid, title in self.folders.items()]
        if route == "/api/folders" and method == "POST":
            uid = body.get("uid") or uuid.uuid4().hex[:14]
            self.folders[uid] = body["title"]
            return 200, {"uid": uid, "title": body["title"]}
        if route.startswith("/api/folders/") and method == "GET":
            uid = route.rsplit("/", 1)[1]
            if uid in self.folders:
                return 200, {"uid": uid, "title": self.folders[uid]}
            return 404, {"message": "folder not found"}
        if route == "/api/dashboards/db" and method == "POST":
            uid = body["dashboard"]["uid"]
            return 200, {"status": "success", "uid": uid, "url": f"/d/{uid}/slug", "version": 1}
        return 404, {"message": "Not found"}

    def requests(self) -> list[tuple[str, str]]:
        return [(call.method, call.path.split("?")[0]) for call in self.calls]

    def uploads(self) -> list[dict]:
        return [call.body for call in self.calls if call.path == "/api/dashboards/db"]


def serve(grafana: FakeGrafana, prefix: str = "") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.removeprefix(prefix)
            status, payload = grafana.handle(
                self.command, path, self.headers.get("Authorization"), json.loads(raw) if raw else None
            )
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    server = serve(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:  # stopped whatever the test did
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dashboard(uid: str, literal_uid: str = "prometheus") -> dict:
    """A small dashboard shaped like ours: a `${datasource}` variable, and one panel on a literal uid."""
    return {
        "id": 42,
        "uid": uid,
        "title": f"Dashboard {uid}",
        "templating": {"list": [{"type": "datasource", "name": "datasource", "query": "prometheus"}]},
        "panels": [
            {"type": "stat", "datasource": {"type": "prometheus", "uid": "${datasource}"}, "targets": []},
            {
                "type": "timeseries",
                "datasource": {"type": "prometheus", "uid": literal_uid},
                "targets": [{"datasource": {"type": "prometheus", "uid": literal_uid}, "expr": "up"}],
            },
        ],
    }


@pytest.fixture
def dashboards_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "dashboards"
    folder.mkdir()
    for uid in ("obs-b", "obs-a"):
        (folder / f"{uid}.json").write_text(json.dumps(dashboard(uid)))
    return folder


def test_push_creates_the_missing_folder_then_uploads_every_dashboard_overwriting_into_it(grafana, dashboards_dir):
    pushed = push(grafana.url, TOKEN, dashboards_dir, folder_title="Airflow")

    assert grafana.requests() == [
        ("GET", "/api/frontend/settings"),
        ("GET", "/api/folders"),
        ("POST", "/api/folders"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert all(call.authorization == f"Bearer {TOKEN}" for call in grafana.calls)
    (folder_uid,) = [uid for uid, title in grafana.folders.items() if title == "Airflow"]
    assert grafana.calls[2].body == {"title": "Airflow"}
    uploads = grafana.uploads()
    assert [body["dashboard"]["uid"] for body in uploads] == ["obs-a", "obs-b"]  # sorted by file name
    assert all(body["overwrite"] is True and body["folderUid"] == folder_uid for body in uploads)
    assert all("id" not in body["dashboard"] for body in uploads)  # the uid decides what is overwritten
    assert [item.url for item in pushed] == [f"{grafana.url}/d/obs-a/slug", f"{grafana.url}/d/obs-b/slug"]


def test_an_existing_folder_is_found_by_title_and_not_created_again(grafana, dashboards_dir):
    grafana.folders["existing-uid"] = "Airflow"

    push(grafana.url, TOKEN, dashboards_dir)

    assert ("POST", "/api/folders") not in grafana.requests()
    assert {body["folderUid"] for body in grafana.uploads()} == {"existing-uid"}


def test_a_folder_uid_is_looked_up_directly_and_created_with_that_uid_when_missing(grafana, dashboards_dir):
    push(grafana.url, TOKEN, dashboards_dir, folder_title="Ops", folder_uid="obs-folder")

    assert grafana.requests()[1:3] == [("GET", "/api/folders/obs-folder"), ("POST", "/api/folders")]
    assert grafana.calls[2].body == {"title": "Ops", "uid": "obs-folder"}
    assert {body["folderUid"] for body in grafana.uploads()} == {"obs-folder"}


def test_datasource_uids_are_mapped_for_the_variable_and_literal_references_but_not_variable_references(
    grafana, dashboards_dir
):
    push(grafana.url, TOKEN, dashboards_dir, datasource_uids={"prometheus": "P1809F7CD0C75ACF3"})

    sent = grafana.uploads()[0]["dashboard"]
    (variable,) = sent["templating"]["list"]
    assert variable["current"] == {"selected": True, "text": "P1809F7CD0C75ACF3", "value": "P1809F7CD0C75ACF3"}
    assert sent["panels"][0]["datasource"]["uid"] == "${datasource}"
    assert sent["panels"][1]["datasource"]["uid"] == "P1809F7CD0C75ACF3"
    assert sent["panels"][1]["targets"][0]["datasource"]["uid"] == "P1809F7CD0C75ACF3"


def test_a_grafana_under_a_sub_path_is_called_there(tmp_path, dashboards_dir):
    fake = FakeGrafana()
    server = serve(fake, prefix="/grafana")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        push(f"http://127.0.0.1:{server.server_address[1]}/grafana/", TOKEN, dashboards_dir)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert ("POST", "/api/dashboards/db") in fake.requests()
    assert all(call.authorization == f"Bearer {TOKEN}" for call in fake.calls)


def test_a_wrong_token_stops_before_anything_is_written_naming_the_url_and_never_the_token(grafana, dashboards_dir):
    with pytest.raises(PushError) as error:
        push(grafana.url, "glsa_wrong-token", dashboards_dir)

    message = str(error.value)
    assert grafana.url in message and "401" in message and "GRAFANA_TOKEN" in message
    assert "glsa_wrong-token" not in message
    assert grafana.requests() == [("GET", "/api/frontend/settings")]


def test_a_token_without_write_access_gets_a_403_that_says_which_role_is_needed(grafana, dashboards_dir):
    grafana.forbidden.add("/api/dashboards/db")

    with pytest.raises(PushError) as error:
        push(grafana.url, TOKEN, dashboards_dir)

    assert "403 Forbidden" in str(error.value) and "'obs-a'" in str(error.value) and "Editor" in str(error.value)
    assert grafana.url in str(error.value)


def test_an_unreachable_grafana_is_reported_with_its_url(dashboards_dir):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    with pytest.raises(PushError) as error:
        push(url, TOKEN, dashboards_dir, timeout=3)

    assert f"cannot reach Grafana at {url}" in str(error.value) and "GRAFANA_URL" in str(error.value)
    assert "Connection refused" in str(error.value) and "HTTPConnectionPool" not in str(error.value)


def test_a_url_that_is_not_grafana_is_reported_as_such(grafana, dashboards_dir):
    grafana.html = True

    with pytest.raises(PushError) as error:
        push(grafana.url, TOKEN, dashboards_dir)

    assert f"{grafana.url} does not answer like Grafana" in str(error.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("grafana.example.com", "expected an http(s) URL"),
        ("https://admin:secret@grafana.example.com", "must not contain credentials"),
    ],
)
def test_a_bad_url_is_refused_before_any_request(dashboards_dir, url, expected):
    with pytest.raises(PushError) as error:
        push(url, TOKEN, dashboards_dir)

    assert expected in str(error.value) and "secret" not in str(error.value)


def test_bad_datasource_mappings_name_the_bad_item(dashboards_dir):
    with pytest.raises(PushError, match="'prometheus': expected TYPE=UID"):
        parse_datasource_uids(["prometheus"])
    with pytest.raises(PushError, match="mapping for promethues: no dashboard"):
        push("http://127.0.0.1:9", TOKEN, dashboards_dir, datasource_uids={"promethues": "X"})


def test_a_folder_without_dashboards_or_with_a_broken_file_is_reported(tmp_path):
    with pytest.raises(PushError, match="has no \\*.json files"):
        load_dashboards(tmp_path)
    (tmp_path / "broken.json").write_text('{"title": "no uid"}')
    with pytest.raises(PushError, match="broken.json: expected a dashboard JSON object with a uid"):
        load_dashboards(tmp_path)


def test_every_committed_dashboard_takes_the_prometheus_mapping():
    committed = load_dashboards(REPO_ROOT / "dashboards")

    assert all("prometheus" in map_datasources(item, {"prometheus": "P1"})[1] for item in committed)


def test_the_cli_pushes_with_the_token_from_the_environment_and_never_prints_it(
    grafana, dashboards_dir, monkeypatch, capsys
):
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("GRAFANA_URL", grafana.url)  # read when the parser is built
    args = ["dashboards", "push", "--dir", str(dashboards_dir), "--datasource-uid", "prometheus=P1"]

    with pytest.raises(SystemExit) as exit_code:
        main(args)

    out, err = capsys.readouterr()
    assert exit_code.value.code == 0, err
    assert f"pushed obs-a (Dashboard obs-a): {grafana.url}/d/obs-a/slug" in out
    assert TOKEN not in out + err
    assert grafana.uploads()[0]["dashboard"]["panels"][1]["datasource"]["uid"] == "P1"


def test_the_cli_explains_a_missing_token_or_url(dashboards_dir, monkeypatch, capsys):
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("GRAFANA_URL", raising=False)

    for args, expected in (
        (["--url", "http://127.0.0.1:9"], "GRAFANA_TOKEN is not set"),
        ([], "pass --url or set GRAFANA_URL"),
    ):
        with pytest.raises(SystemExit) as exit_code:
            main(["dashboards", "push", "--dir", str(dashboards_dir), *args])
        assert exit_code.value.code == 1
        assert expected in capsys.readouterr().err
