"""The catalog HTTP API: uploads, listing, roles and every kind of bad input, on both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import bad_file, bomb_png, photo_bytes, snapshot


def _upload(
    client: TestClient, headers: dict[str, str], name: str, data: bytes, **form: str
) -> object:
    fields = {"rightsholder": "Northwind Games", **form}
    return client.post("/v1/assets", headers=headers, files={"file": (name, data)}, data=fields)


@pytest.fixture
def catalog_ready(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    legal = keys["legal"]
    assert (
        client.post(
            "/v1/rightsholders", headers=legal, json={"name": "Northwind Games"}
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/v1/franchises",
            headers=legal,
            json={"name": "Skyreach", "rightsholder": "Northwind Games"},
        ).status_code
        == 201
    )


def test_health_answers_with_the_database(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] in ("sqlite", "postgresql")


def test_upload_list_get_and_thumbnail(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    legal, ml = keys["legal"], keys["ml"]
    res = _upload(
        client, legal, "astronaut.png", photo_bytes(), franchise="Skyreach", tags="hero, key art"
    )
    assert res.status_code == 201, res.text
    asset = res.json()["asset"]
    assert asset["tags"] == ["hero", "key art"] and asset["width"] == 512
    again = _upload(client, legal, "copy.png", photo_bytes())
    assert again.status_code == 200
    assert again.json()["status"] == "existing"
    _upload(client, legal, "coffee.png", photo_bytes("coffee.png"))
    page = client.get("/v1/assets", headers=ml, params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [a["title"] for a in page["items"]] == ["coffee"]
    assert client.get("/v1/assets", headers=ml, params={"tag": "hero"}).json()["total"] == 1
    got = client.get(f"/v1/assets/{asset['sha256']}", headers=ml).json()
    assert got["id"] == asset["id"]
    content = client.get(f"/v1/assets/{asset['id']}/content", headers=ml)
    assert content.content == photo_bytes()
    thumb = client.get(f"/v1/assets/{asset['id']}/thumbnail?size=64", headers=ml)
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"


def test_licences_are_created_and_listed(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    body = {
        "name": "NW-Lumen",
        "licensor": "Northwind Games",
        "licensee": "Lumen AI",
        "scope": {"franchises": ["Skyreach"]},
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
    }
    res = client.post("/v1/licences", headers=keys["legal"], json=body)
    assert res.status_code == 201, res.text
    listed = client.get("/v1/licences", headers=keys["ml"], params={"licensee": "Lumen AI"})
    assert [lic["name"] for lic in listed.json()] == ["NW-Lumen"]
    bad = client.post(
        "/v1/licences", headers=keys["legal"], json={**body, "name": "x", "valid_to": "2025-01-01"}
    )
    assert bad.status_code == 422 and "before" in bad.json()["error"]["message"]


BAD_UPLOADS = {
    "truncated_jpeg": (422, "corrupt_media"),
    "text_named_png": (415, "unsupported_media"),
    "svg_named_png": (415, "unsupported_media"),
    "zero_bytes": (422, "corrupt_media"),
    "unknown_format_bmp": (415, "unsupported_media"),
    "header_bomb": (413, "media_too_large"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_uploads_get_a_4xx_with_a_reason_and_change_nothing(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None, case: str
) -> None:
    app = client.app
    before = snapshot(app.state.session_factory, app.state.store)
    name, data = bad_file(case)
    res = _upload(client, keys["legal"], name, data)
    status, code = BAD_UPLOADS[case]
    assert res.status_code == status
    error = res.json()["error"]
    assert error["code"] == code and name in error["message"]
    assert snapshot(app.state.session_factory, app.state.store) == before


def test_a_real_decompression_bomb_upload_is_413(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    res = _upload(client, keys["legal"], "bomb.png", bomb_png())
    assert res.status_code == 413
    assert "decompression bomb" in res.json()["error"]["message"]


def test_a_60_mb_upload_is_refused_before_it_is_read(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    app = client.app
    before = snapshot(app.state.session_factory, app.state.store)
    res = _upload(client, keys["legal"], "huge.png", b"\0" * (60 * 1000 * 1000))
    assert res.status_code == 413
    assert "over the limit" in res.json()["error"]["message"]
    assert snapshot(app.state.session_factory, app.state.store) == before


def test_a_file_over_the_limit_inside_the_framing_allowance_is_413(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    res = _upload(client, keys["legal"], "big.png", b"\0" * (2 * 1024 * 1024 + 10))
    assert res.status_code == 413


def test_malformed_json_is_400(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    res = client.post(
        "/v1/rightsholders",
        content=b'{"name": ',
        headers={**keys["legal"], "content-type": "application/json"},
    )
    assert res.status_code == 400
    assert res.json()["error"]["code"] == "bad_json"


def test_a_wrong_field_is_422_naming_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    res = client.post("/v1/rightsholders", json={"nom": "x"}, headers=keys["legal"])
    assert res.status_code == 422 and "name" in res.json()["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "missing API key"),
        ({"Authorization": "Bearer nonsense"}, 401, "malformed"),
        ({"Authorization": "Bearer ch_000000000000_abc"}, 401, "unknown API key"),
    ],
)
def test_missing_or_unknown_keys_are_401(
    client: TestClient, headers: dict[str, str], status: int, words: str
) -> None:
    res = client.get("/v1/assets", headers=headers)
    assert res.status_code == status and words in res.json()["error"]["message"]


@pytest.mark.parametrize("role", ["ml", "partner"])
def test_wrong_roles_are_403(
    client: TestClient, keys: dict[str, dict[str, str]], role: str
) -> None:
    app = client.app
    before = snapshot(app.state.session_factory, app.state.store)
    res = client.post("/v1/rightsholders", json={"name": "Sneaky"}, headers=keys[role])
    assert res.status_code == 403 and "may not" in res.json()["error"]["message"]
    assert snapshot(app.state.session_factory, app.state.store) == before


def test_partners_cannot_read_the_catalog(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert client.get("/v1/assets", headers=keys["partner"]).status_code == 403
    assert client.get("/v1/assets", headers=keys["admin"]).status_code == 200


def test_not_found_and_duplicates(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    assert client.get("/v1/assets/999", headers=keys["ml"]).status_code == 404
    assert client.get("/v1/franchises/999", headers=keys["ml"]).json()["error"]["code"] == (
        "not_found"
    )
    dup = client.post("/v1/rightsholders", headers=keys["legal"], json={"name": "Northwind Games"})
    assert dup.status_code == 409


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/assets" in spec["paths"] and client.get("/docs").status_code == 200


def test_an_uploaded_asset_is_fingerprinted_and_matchable(
    client: TestClient, keys: dict[str, dict[str, str]], catalog_ready: None
) -> None:
    import io

    from PIL import Image

    asset = _upload(client, keys["legal"], "coffee.png", photo_bytes("coffee.png")).json()["asset"]
    small = io.BytesIO()
    Image.open(io.BytesIO(photo_bytes("coffee.png"))).convert("RGB").resize((300, 200)).save(
        small, "JPEG", quality=60
    )
    res = client.post(
        "/v1/match", headers=keys["ml"], files=[("files", ("query.jpg", small.getvalue()))]
    )
    assert res.status_code == 200, res.text
    matches = res.json()["results"][0]["matches"]
    assert matches and matches[0]["asset_id"] == asset["id"]
