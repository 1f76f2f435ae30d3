"""`airflow-obs dashboards push`: upload the committed dashboards (dashboards/*.json) to an existing Grafana.

Through grafana-client's GrafanaApi: the dashboards land in one folder (found by uid or title, created if
missing), overwriting what is there, each datasource pointed at the target Grafana's uid for its type. The API
token comes only from the environment (GRAFANA_TOKEN) and is never printed: every error names the URL instead.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError

DEFAULT_FOLDER_TITLE = "Airflow"
DEFAULT_TIMEOUT_SECONDS = 10.0
COMMIT_MESSAGE = "airflow-obs dashboards push"
CHECK_URL = "check --url or GRAFANA_URL"
T = TypeVar("T")


class PushError(Exception):
    """Pushing cannot go on; the message says what failed, where, and what to check."""


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    url: str  # where Grafana now serves it


def parse_datasource_uids(items: Iterable[str]) -> dict[str, str]:
    """`type=uid` pairs (`prometheus=P1809F7CD0C75ACF3`) into a mapping; a malformed one raises PushError."""
    mapping: dict[str, str] = {}
    for item in items:
        kind, sep, uid = item.partition("=")
        if not sep or not kind.strip() or not uid.strip():
            raise PushError(f"datasource mapping {item!r}: expected TYPE=UID, e.g. prometheus=P1809F7CD0C75ACF3")
        mapping[kind.strip()] = uid.strip()
    return mapping


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """Every `*.json` in the directory, sorted by name; each must be a dashboard with a uid and a title."""
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        raise PushError(f"no dashboards to push: {directory} has no *.json files (expected dashboards/<uid>.json)")
    dashboards = []
    for path in files:
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PushError(f"{path}: not readable as JSON ({exc})") from None
        if not isinstance(dashboard, dict) or not dashboard.get("uid") or not dashboard.get("title"):
            raise PushError(f"{path}: expected a dashboard JSON object with a uid and a title")
        dashboards.append(dashboard)
    return dashboards


def _walk(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def map_datasources(dashboard: dict[str, Any], uids: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """The dashboard pointed at the target's datasources, and which types of `uids` it uses.

    Our dashboards reach a datasource through a variable (`${datasource}` of type prometheus): that variable's
    current value becomes the mapped uid, so the dashboard opens on the right one where a Grafana has several.
    A reference to a literal uid anywhere (panel, target, annotation), e.g. `{"type": "prometheus", "uid": "p"}`,
    is rewritten to the mapped one.
    """
    mapped = copy.deepcopy(dashboard)
    used: set[str] = set()
    for variable in mapped.get("templating", {}).get("list", []):
        kind = variable.get("query")
        if variable.get("type") == "datasource" and isinstance(kind, str) and kind in uids:
            variable["current"] = {"selected": True, "text": uids[kind], "value": uids[kind]}
            used.add(kind)
    for node in _walk(mapped):
        reference = node.get("datasource")
        if isinstance(reference, dict) and reference.get("type") in uids:
            uid = reference.get("uid")
            if isinstance(uid, str) and uid and not uid.startswith("$"):  # a variable is resolved by Grafana
                reference["uid"] = uids[reference["type"]]
                used.add(reference["type"])
    return mapped, used


def _api_url(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"Grafana URL {url!r}: expected an http(s) URL such as https://grafana.example.com")
    if parts.username or parts.password:
        # Credentials in a URL end up in error messages and shell history: the token has its own variable.
        raise PushError("Grafana URL must not contain credentials: put the API token in GRAFANA_TOKEN")
    try:
        port = parts.port
    except ValueError:
        raise PushError(f"Grafana URL {url!r}: the port is not a number") from None
    # grafana-client appends `api` to the prefix as is: a sub-path Grafana needs the trailing slash.
    prefix = parts.path.strip("/")
    return parts.scheme, parts.hostname, port, f"{prefix}/" if prefix else ""


def connect(url: str, token: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> GrafanaApi:
    """A client for the Grafana at `url`, authenticating with the token as a bearer token."""
    if not token:
        raise PushError("GRAFANA_TOKEN is not set: create a service account token with the Editor role in Grafana")
    protocol, host, port, prefix = _api_url(url)
    return GrafanaApi(auth=token, protocol=protocol, host=host, port=port, url_path_prefix=prefix, timeout=timeout)


def _connection_reason(text: str) -> str:
    """The part of urllib3's long message a person needs: `Connection refused`, `Failed to resolve 'host'`."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text) or re.search(r"(Failed to resolve '[^']+')", text)
    if found:
        return found.group(1).strip()
    return text.splitlines()[0][:200] if text else "connection failed"


def _call(url: str, doing: str, request: Callable[[], T]) -> T:
    """Run one API call; turn what can go wrong into a PushError that names the URL (never the token)."""
    try:
        return request()
    except GrafanaTimeoutError:
        raise PushError(f"Grafana at {url} did not answer in time while {doing}") from None
    except niquests.exceptions.ConnectionError as exc:
        reason = _connection_reason(str(exc))
        raise PushError(f"cannot reach Grafana at {url} while {doing}: {reason} ({CHECK_URL})") from None
    except GrafanaClientError as exc:
        if exc.status_code == 401:
            raise PushError(
                f"Grafana at {url} rejected the token in GRAFANA_TOKEN (401 Unauthorized) while {doing}:"
                " check that it is a valid, unexpired service account token of this Grafana"
            ) from None
        if exc.status_code == 403:
            raise PushError(
                f"Grafana at {url} refused {doing} (403 Forbidden): the token's service account needs the Editor"
                " role, or write access to the folder"
            ) from None
        raise PushError(f"Grafana at {url} answered {exc.status_code} while {doing}: {exc.message}") from None
    except GrafanaException as exc:
        raise PushError(f"Grafana at {url} failed while {doing}: {exc.message}") from None
    except ValueError:  # a body that is not JSON: something else answers at that URL
        raise PushError(f"{url} does not answer like Grafana's HTTP API while {doing} ({CHECK_URL})") from None


def _folder_or_none(api: GrafanaApi, uid: str) -> dict[str, Any] | None:
    try:
        return api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def ensure_folder(api: GrafanaApi, url: str, title: str, uid: str | None) -> str:
    """The uid of the folder to push into: the one with `uid` (or else `title`), created if it is missing."""
    if uid:
        existing = _call(url, f"looking up folder uid {uid!r}", lambda: _folder_or_none(api, uid))
    else:
        folders = _call(url, "listing folders", api.folder.get_all_folders)
        existing = next((folder for folder in folders if folder.get("title") == title), None)
    if existing:
        return existing["uid"]
    created = _call(url, f"creating folder {title!r}", lambda: api.folder.create_folder(title, uid=uid or None))
    return created["uid"]


def push(
    url: str,
    token: str,
    directory: Path,
    *,
    folder_title: str = DEFAULT_FOLDER_TITLE,
    folder_uid: str | None = None,
    datasource_uids: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> list[Pushed]:
    """Upload every dashboard in `directory` into the folder, overwriting; return what Grafana now serves."""
    uids = dict(datasource_uids or {})
    dashboards = load_dashboards(directory)
    mapped = [map_datasources(dashboard, uids) for dashboard in dashboards]
    unused = set(uids) - set().union(*(used for _, used in mapped))
    if unused:
        raise PushError(
            f"datasource mapping for {', '.join(sorted(unused))}: no dashboard in {directory} uses a datasource of"
            " that type (types are Grafana plugin ids such as prometheus, tempo, loki)"
        )
    url = url.rstrip("/")
    api = connect(url, token, timeout)
    # First call: proves the URL is a Grafana and the token is accepted, before anything is written. The raw
    # GET of what api.health.check() reads: that helper fails on a non-JSON page instead of returning it.
    settings = _call(url, "checking the connection", lambda: api.client.GET("/frontend/settings"))
    if not isinstance(settings, dict) or "buildInfo" not in settings:
        raise PushError(f"{url} does not answer like Grafana's HTTP API ({CHECK_URL})")
    target = ensure_folder(api, url, folder_title, folder_uid)
    pushed = []
    for dashboard, _ in mapped:
        dashboard.pop("id", None)  # Grafana matches by uid; an id from another instance would clash
        body = {"dashboard": dashboard, "folderUid": target, "overwrite": True, "message": COMMIT_MESSAGE}
        answer = _call(
            url, f"uploading dashboard {dashboard['uid']!r}", lambda body=body: api.dashboard.update_dashboard(body)
        )
        pushed.append(Pushed(dashboard["uid"], dashboard["title"], url + str(answer.get("url", ""))))
    return pushed
