"""Console sign-in: server-side sessions, CSRF tokens, the Origin check, cookies and headers."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.access import ConsoleSession, Role, create_api_key, revoke_api_key
from registry.db import session_scope
from tests.api.console_helpers import csrf_of, origin, sign_in


def _key(client: TestClient, role: str = "legal") -> str:
    with session_scope(client.app.state.session_factory) as session:
        return create_api_key(session, name=f"{role}-user", role=role)[1]


def _sessions(client: TestClient) -> list[ConsoleSession]:
    with session_scope(client.app.state.session_factory) as session:
        return list(session.scalars(select(ConsoleSession)))


def test_anonymous_users_are_sent_to_sign_in(client: TestClient) -> None:
    for path in ("/console/", "/console/assets", "/console/assets/1"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=")


def test_the_cookie_holds_an_opaque_session_id_never_the_key(client: TestClient) -> None:
    key = _key(client)
    sign_in(client, key)
    token = client.cookies["clearhouse_session"]
    assert key not in token and token not in key
    (row,) = _sessions(client)
    assert row.id == hashlib.sha256(token.encode()).hexdigest()  # only the hash is stored
    # The session cookie is not an API credential: /v1 wants the key as a bearer token.
    assert client.get("/v1/assets").status_code == 401
    assert client.get("/console/assets").status_code == 200


def test_the_old_key_cookie_no_longer_authenticates_the_api(client: TestClient) -> None:
    key = _key(client)
    client.cookies.set("clearhouse_key", key)
    assert client.get("/v1/assets").status_code == 401


def test_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    csrf = sign_in(client, _key(client))
    token = client.cookies["clearhouse_session"]
    response = client.post("/console/logout", data={"csrf_token": csrf}, headers=origin(client),
                           follow_redirects=False)
    assert response.status_code == 303
    (row,) = _sessions(client)
    assert row.ended_at is not None
    # Replaying the old cookie (as a thief would) gets the sign-in page.
    client.cookies.set("clearhouse_session", token)
    assert client.get("/console/assets", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(client: TestClient) -> None:
    key = _key(client)
    sign_in(client, key)
    with session_scope(client.app.state.session_factory) as session:
        revoke_api_key(session, prefix=key.split("_")[1])
    assert client.get("/console/assets", follow_redirects=False).status_code == 303


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    client: TestClient,
) -> None:
    sign_in(client, _key(client))
    for data, headers in (({}, {}), ({"csrf_token": "forged"}, {}),
                          ({}, {"X-CSRF-Token": "forged"})):
        response = client.post("/console/logout", data=data,
                               headers=origin(client) | headers, follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.text
        assert response.headers["content-type"].startswith("text/html")
    (row,) = _sessions(client)
    assert row.ended_at is None  # still signed in
    assert client.get("/console/assets").status_code == 200


def test_the_csrf_token_also_comes_as_the_htmx_header(client: TestClient) -> None:
    csrf = sign_in(client, _key(client))
    response = client.post("/console/logout", headers=origin(client) | {"X-CSRF-Token": csrf},
                           follow_redirects=False)
    assert response.status_code == 303
    assert _sessions(client)[0].ended_at is not None


def test_unsafe_requests_from_another_origin_are_refused(client: TestClient) -> None:
    csrf = sign_in(client, _key(client))
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/page"}, {}):
        response = client.post("/console/logout", data={"csrf_token": csrf}, headers=headers,
                               follow_redirects=False)
        assert response.status_code == 403, headers
    assert _sessions(client)[0].ended_at is None
    # Same-site Referer without Origin (older browsers) passes.
    response = client.post("/console/logout", data={"csrf_token": csrf},
                           headers={"Referer": "http://testserver/console/"},
                           follow_redirects=False)
    assert response.status_code == 303


def test_sign_in_itself_needs_its_form_token_and_this_origin(client: TestClient) -> None:
    key = _key(client)
    client.get("/console/login")
    no_token = client.post("/console/login", data={"key": key}, headers=origin(client),
                           follow_redirects=False)
    assert no_token.status_code == 403
    form = client.get("/console/login")
    cross = client.post("/console/login", data={"key": key, "csrf_token": csrf_of(form.text)},
                        headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert cross.status_code == 403
    assert _sessions(client) == []


def test_a_wrong_key_is_refused_with_a_reason(client: TestClient) -> None:
    form = client.get("/console/login")
    response = client.post("/console/login",
                           data={"key": "ch_nope_nope", "csrf_token": csrf_of(form.text)},
                           headers=origin(client), follow_redirects=False)
    assert response.status_code == 401
    assert "unknown API key" in response.text
    assert _sessions(client) == []


def test_the_cookie_is_secure_httponly_and_strict_over_tls(client: TestClient) -> None:
    key = _key(client)
    tls = TestClient(client.app, base_url="https://testserver")
    form = tls.get("/console/login")
    assert "secure" in form.headers["set-cookie"].lower()
    response = tls.post("/console/login", data={"key": key, "csrf_token": csrf_of(form.text)},
                        headers=origin(tls), follow_redirects=False)
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("clearhouse_session="))
    lowered = cookie.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=strict" in lowered
    # Over plain HTTP (a laptop demo) the cookie cannot be Secure or the browser would drop it.
    plain_form = client.get("/console/login")
    plain = client.post("/console/login",
                        data={"key": key, "csrf_token": csrf_of(plain_form.text)},
                        headers=origin(client), follow_redirects=False)
    assert "secure" not in plain.headers["set-cookie"].lower()


def test_console_pages_carry_csp_and_frame_ancestors(client: TestClient) -> None:
    sign_in(client, _key(client))
    for path in ("/console/login", "/console/assets", "/console/no-such-page"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"


def test_unknown_console_urls_get_an_html_404_and_the_api_keeps_json(client: TestClient) -> None:
    sign_in(client, _key(client))
    page = client.get("/console/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    anonymous = TestClient(client.app).get("/console/nothing-here", follow_redirects=False)
    assert anonymous.status_code == 404 and "text/html" in anonymous.headers["content-type"]
    api = client.get("/v1/no-such-route")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_a_partner_signs_in_but_may_not_open_the_catalog(client: TestClient) -> None:
    key = _key(client, Role.partner.value)
    form = client.get("/console/login")
    response = client.post("/console/login", data={"key": key, "csrf_token": csrf_of(form.text)},
                           headers=origin(client), follow_redirects=False)
    assert response.headers["location"] == "/console/verify"
    page = client.get("/console/assets")
    assert page.status_code == 403
    assert "may not" in page.text and "text/html" in page.headers["content-type"]
