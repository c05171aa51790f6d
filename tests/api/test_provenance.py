"""POST /v1/sign and POST /v1/verify: roles, round trip, tampering and bad input, on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import truncated_jpeg
from tests.photos import skimage_photo
from tests.registry.provenance.helpers import C2PA_FIXTURES, change_jpeg_pixels, cut_png_manifest
from tests.registry.provenance.test_service import POLICY


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from registry.settings import Settings

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "harbor.yaml").write_text(POLICY)
    return Settings(home=home, database_url=db_url, max_upload_bytes=2 * 1024 * 1024,
                    policies_dir=policies)


def _photo(name: str) -> bytes:
    return skimage_photo(name).read_bytes()


def _assets(client: TestClient, legal: dict[str, str]) -> list[int]:
    client.post("/v1/rightsholders", headers=legal, json={"name": "Meridian Pictures"})
    client.post("/v1/franchises", headers=legal,
                json={"name": "Harbor Lights", "rightsholder": "Meridian Pictures"})
    ids = []
    for name in ("coffee.png", "chelsea.png"):
        res = client.post("/v1/assets", headers=legal, files={"file": (name, _photo(name))},
                          data={"rightsholder": "Meridian Pictures",
                                "franchise": "Harbor Lights"})
        assert res.status_code == 201, res.text
        ids.append(res.json()["asset"]["id"])
    return ids


def _sign(client: TestClient, headers: dict[str, str], name: str = "rocket.jpg",
          **form: object) -> object:
    return client.post("/v1/sign", headers=headers, files={"file": (name, _photo(name))},
                       data=form)


def _verify(client: TestClient, headers: dict[str, str], data: bytes, name: str = "x.jpg"
            ) -> object:
    return client.post("/v1/verify", headers=headers, files={"file": (name, data)})


def test_a_partner_signs_with_two_catalog_ingredients_and_verify_says_valid(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    ids = _assets(client, keys["legal"])
    res = client.post(
        "/v1/sign", headers=keys["partner"],
        files=[("file", ("gen.jpg", _photo("rocket.jpg"))),
               ("ingredient_file", ("mine.png", _photo("chelsea.png")))],
        data={"model": "lumen-2", "prompt": "harbor", "ingredient": [str(ids[0])],
              "training": ["data_mining=constrained:research only"]},
    )
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "image/jpeg"
    summary = json.loads(res.headers["x-clearhouse-signing"])
    assert summary["ingredients"] == ids
    assert summary["training_mining"]["ai_generative_training"] == "notAllowed"
    body = _verify(client, keys["partner"], res.content).json()  # type: ignore[attr-defined]
    assert body["state"] == "valid" and body["signer"]["trusted"]
    assert body["actions"][0]["softwareAgent"] == "lumen-2"
    assert [i["asset_id"] for i in body["ingredients"]] == ids
    assert body["training_mining"]["uses"]["data_mining"] == {
        "use": "constrained", "constraint_info": "research only"}
    assert sorted(m["asset_id"] for m in body["matches"]) == sorted(ids)


def test_roles_sign_is_for_partners_and_admins_and_verify_for_every_role(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert _sign(client, keys["ml"]).status_code == 403  # type: ignore[attr-defined]
    assert _sign(client, keys["legal"]).status_code == 403  # type: ignore[attr-defined]
    assert _sign(client, {}).status_code == 401  # type: ignore[attr-defined]
    signed = _sign(client, keys["admin"])
    assert signed.status_code == 200  # type: ignore[attr-defined]
    for role in ("partner", "ml", "legal", "admin"):
        res = _verify(client, keys[role], signed.content)  # type: ignore[attr-defined]
        assert res.status_code == 200 and res.json()["state"] == "valid"  # type: ignore[attr-defined]
    assert _verify(client, {}, signed.content).status_code == 401  # type: ignore[attr-defined]


@pytest.mark.parametrize("tamper", ["pixels", "cut"])
def test_tampered_files_are_invalid_with_a_code_never_a_500(
    client: TestClient, keys: dict[str, dict[str, str]], tamper: str
) -> None:
    name = "rocket.jpg" if tamper == "pixels" else "coffee.png"
    signed = _sign(client, keys["partner"], name).content  # type: ignore[attr-defined]
    data = change_jpeg_pixels(signed) if tamper == "pixels" else cut_png_manifest(signed)
    res = _verify(client, keys["partner"], data, name)
    assert res.status_code == 200  # type: ignore[attr-defined]
    body = res.json()  # type: ignore[attr-defined]
    assert body["state"] == "invalid"
    assert body["codes"] == (["assertion.dataHash.mismatch"] if tamper == "pixels"
                             else ["general.error"])
    assert body["message"].startswith("invalid: ")


def test_fixture_files_verify_over_http_with_the_studio_trust(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    expected = {"C.jpg": "untrusted", "XCA.jpg": "invalid", "A.jpg": "no_manifest",
                "cloud.jpg": "no_manifest", "no_alg.jpg": "invalid"}
    for name, state in expected.items():
        res = _verify(client, keys["partner"], (C2PA_FIXTURES / name).read_bytes(), name)
        assert res.status_code == 200, res.text  # type: ignore[attr-defined]
        assert res.json()["state"] == state, name  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"plain text\n", 415), (truncated_jpeg(), 422), (b"", 422),
     (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 415)],
)
def test_bad_uploads_are_4xx_with_the_error_shape(
    client: TestClient, keys: dict[str, dict[str, str]], data: bytes, status: int
) -> None:
    for res in (_verify(client, keys["partner"], data),
                client.post("/v1/sign", headers=keys["partner"], files={"file": ("x", data)})):
        assert res.status_code == status, res.text  # type: ignore[attr-defined]
        assert set(res.json()["error"]) == {"code", "message", "detail"}  # type: ignore[attr-defined]


def test_bad_sign_requests_are_4xx(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    partner = keys["partner"]
    assert _sign(client, partner, ingredient=["99999"]).status_code == 404  # type: ignore[attr-defined]
    path_try = _sign(client, partner, ingredient=[str(skimage_photo("coffee.png"))])
    assert path_try.status_code == 422  # type: ignore[attr-defined]
    assert "asset id or a sha256" in path_try.json()["error"]["message"]  # type: ignore[attr-defined]
    assert _sign(client, partner, training=["ai_training=maybe"]).status_code == 422  # type: ignore[attr-defined]
    missing = client.post("/v1/sign", headers=partner, data={"model": "m"})
    assert missing.status_code == 422


def test_the_trust_anchors_are_served_as_pem(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    res = client.get("/v1/trust-anchors", headers=keys["partner"])
    assert res.status_code == 200 and b"BEGIN CERTIFICATE" in res.content


def test_configured_trust_anchors_replace_the_studio_root(
    home: Path, db_url: str, keys: dict[str, dict[str, str]], client: TestClient
) -> None:
    from api.app import create_app
    from registry.settings import Settings
    from tests.registry.provenance.helpers import TEST_TRUST_BUNDLE

    ours = _sign(client, keys["partner"]).content  # type: ignore[attr-defined]
    app = create_app(Settings(home=home, database_url=db_url, trust_anchors=TEST_TRUST_BUNDLE))
    with TestClient(app, raise_server_exceptions=False) as other:
        fixture = _verify(other, keys["partner"], (C2PA_FIXTURES / "C.jpg").read_bytes(), "C.jpg")
        assert fixture.json()["state"] == "valid"  # type: ignore[attr-defined]
        mine = _verify(other, keys["partner"], ours).json()  # type: ignore[attr-defined]
        assert mine["state"] == "untrusted"
        assert "does not chain to a configured trust anchor" in mine["message"]
    app.state.engine.dispose()


def test_verify_recovers_a_stripped_copy_for_a_partner_with_catalog_summaries(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    import io

    from PIL import Image

    ids = _assets(client, keys["legal"])
    res = _sign(client, keys["partner"], ingredient=[str(ids[1])], model="lumen-2")
    assert res.status_code == 200  # type: ignore[attr-defined]
    manifest_id = json.loads(res.headers["X-Clearhouse-Signing"])["manifest_id"]  # type: ignore[attr-defined]
    image = Image.open(io.BytesIO(res.content)).convert("RGB")  # type: ignore[attr-defined]
    out = io.BytesIO()
    w, h = image.size
    image.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(out, "PNG")
    got = _verify(client, keys["partner"], out.getvalue(), "cropped.png")
    assert got.status_code == 200, got.text  # type: ignore[attr-defined]
    data = got.json()  # type: ignore[attr-defined]
    assert data["state"] == "no_manifest"
    rec = data["recovered"]
    assert rec["manifest_id"] == manifest_id and rec["studio"] == "Clearhouse Studio"
    assert "its manifest was removed" in data["message"]
    assert rec["actions"][0]["softwareAgent"] == "lumen-2"
    assert rec["ingredients"][0]["asset"] == {"asset_id": ids[1], "title": "chelsea",
                                              "franchise": "Harbor Lights",
                                              "rightsholder": "Meridian Pictures"}
    # the partner sees the catalog summary here, not through the asset API
    assert client.get(f"/v1/assets/{ids[1]}", headers=keys["partner"]).status_code == 403
    # a catalog match of the file itself carries the same summary
    photo = _verify(client, keys["partner"], _photo("coffee.png"), "coffee.png").json()  # type: ignore[attr-defined]
    assert photo["recovered"] is None
    assert photo["matches"][0]["asset"]["rightsholder"] == "Meridian Pictures"
