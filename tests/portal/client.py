"""Driving the portal like a browser does: sign in, read the CSRF token off the page, post forms."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: TestClient, username: str, password: str) -> Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )


def sign_in(client: TestClient, username: str, password: str, new_password: str = "") -> None:
    """Sign in; if the account must change its password, change it to ``new_password``."""
    r = login(client, username, password)
    assert r.status_code == 200, r.text
    if r.url.path == "/password":
        assert new_password, "this account must change its initial password"
        r = client.post(
            "/password",
            data={
                "csrf_token": csrf_of(r.text),
                "current": password,
                "new": new_password,
                "confirm": new_password,
            },
        )
        assert r.status_code == 200 and r.url.path != "/password", r.text


def post_form(
    client: TestClient,
    path: str,
    data: dict[str, Any] | None = None,
    *,
    page: str | None = None,
    files: dict[str, Any] | None = None,
) -> Response:
    """POST ``data`` to ``path`` with the CSRF token read from ``page`` (default: ``path``)."""
    token = csrf_of(client.get(page or path).text)
    return client.post(path, data={**(data or {}), "csrf_token": token}, files=files)
