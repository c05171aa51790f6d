"""Signing in to the console from a TestClient the way a browser does (Origin header, CSRF)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.base_url).rstrip("/")}


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign in with `key`; returns the session's CSRF token (from the home page's forms)."""
    form = client.get("/console/login")
    response = client.post(
        "/console/login", data={"key": key, "csrf_token": csrf_of(form.text)},
        headers=origin(client), follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get(response.headers["location"]).text)
