"""The api-server's app, built as `airflow api-server` builds it, and requests to it as the UI's browser makes them.

Simple auth manager; tokens it signed for an admin, a read-only viewer (the stack's `oncall` account) and a user
with no role. A page request sends the token as the UI's session cookie, not as a header.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROLES = ("admin", "viewer", None)


@dataclass
class ApiServer:
    client: Any
    tokens: dict[str | None, str]

    def page(self, path: str, role: str | None = "admin") -> Any:
        """GET `path` with the session cookie of a user of `role` (redirects are returned, not followed)."""
        self.client.cookies.set("_token", self.tokens[role])
        try:
            return self.client.get(path, follow_redirects=False)
        finally:
            self.client.cookies.clear()

    def anonymous(self, path: str) -> Any:
        return self.client.get(path, follow_redirects=False)


def api_server(jwt_secret: str) -> Iterator[ApiServer]:
    import pytest
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", jwt_secret)
        purge_cached_app()
        client = TestClient(create_app())
        tokens = {
            role: get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"user-{role}", role=role))
            for role in ROLES
        }
        yield ApiServer(client, tokens)
        purge_cached_app()


def assert_sent_to_login(response: Any, page: str) -> None:
    """A 401 whose HTML sends a browser to Airflow's login page, which returns to `page` once signed in."""
    assert response.status_code == 401, response.text
    login = urlsplit(html.unescape(re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', response.text)[1]))
    assert login.path == "/auth/login"
    assert urlsplit(parse_qs(login.query)["next"][0]).path == page
