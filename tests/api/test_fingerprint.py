"""POST /v1/match: uploads of one image or a small batch, roles and bad input, on both backends."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from registry.db import session_scope
from tests.factories import bad_file, photo_bytes
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import add_photo
from tests.registry.fingerprint.transforms import overlay_15


def _catalog(client: TestClient) -> dict[str, int]:
    out = {}
    with session_scope(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        for name in ("astronaut.png", "chelsea.png"):
            out[name] = add_photo(session, client.app.state.store,  # type: ignore[attr-defined]
                                  skimage_photo(name)).id
    return out


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def test_a_batch_is_matched_file_by_file(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    ids = _catalog(client)
    overlaid = _jpeg(overlay_15(Image.open(skimage_photo("chelsea.png")).convert("RGB")))
    files = [("files", ("cat.jpg", overlaid)), ("files", ("coffee.png", photo_bytes("coffee.png"))),
             ("files", bad_file("zero_bytes")), ("files", bad_file("svg_named_png"))]
    res = client.post("/v1/match", headers=keys["partner"], files=files)
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert [r["path"] for r in results] == ["cat.jpg", "coffee.png", "empty.jpg", "vector.png"]
    assert results[0]["matches"][0]["asset_id"] == ids["chelsea.png"]
    assert results[0]["matches"][0]["confidence"] > 0.5
    assert results[1] == {"path": "coffee.png", "error": None, "matches": []}
    assert "empty" in results[2]["error"] and "not a recognised" in results[3]["error"]


def test_every_reading_role_may_match_and_anonymous_callers_may_not(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    ids = _catalog(client)
    for role in ("legal", "ml", "partner", "admin"):
        res = client.post("/v1/match", headers=keys[role],
                          files=[("files", ("a.png", photo_bytes("astronaut.png")))])
        assert res.status_code == 200, (role, res.text)
        assert res.json()["results"][0]["matches"][0]["asset_id"] == ids["astronaut.png"]
    anonymous = client.post("/v1/match", files=[("files", ("a.png", photo_bytes()))])
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"


def test_requests_without_files_or_with_too_many_are_refused(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    empty = client.post("/v1/match", headers=keys["ml"])
    assert empty.status_code == 422 and "error" in empty.json()
    many = [("files", (f"{i}.png", b"x")) for i in range(17)]
    res = client.post("/v1/match", headers=keys["ml"], files=many)
    assert res.status_code == 422 and "at most 16" in res.json()["error"]["message"]


def test_an_oversized_file_in_a_batch_gets_its_own_error(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    _catalog(client)
    big = b"\xff\xd8" + b"\0" * (1024 * 1024 + 10)  # settings allow 2 MiB per request here
    limit = client.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]
    files = [("files", ("big.jpg", big + b"\0" * (limit - len(big) + 1))),
             ("files", ("a.png", photo_bytes("astronaut.png")))]
    res = client.post("/v1/match", headers=keys["ml"], files=files)
    assert res.status_code in (200, 413)
    if res.status_code == 200:
        results = res.json()["results"]
        assert "over the limit" in results[0]["error"] and results[1]["matches"]
