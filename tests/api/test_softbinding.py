"""The C2PA Soft Binding Resolution API routes, on both backends, with real signing over HTTP."""

from __future__ import annotations

import io
import json
import urllib.parse
from pathlib import Path

import c2pa
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from registry.provenance.c2pa_adapter import read_manifest, reader_settings
from registry.settings import Settings
from tests.photos import skimage_photo

ISCC = "io.iscc.v0"


@pytest.fixture
def settings(home: Path, db_url: str) -> Settings:
    return Settings(home=home, database_url=db_url, max_upload_bytes=2 * 1024 * 1024,
                    sbr_requests_per_minute=1000)


def _sign(client: TestClient, partner: dict[str, str], name: str = "rocket.jpg"
          ) -> tuple[bytes, dict[str, object]]:
    res = client.post("/v1/sign", headers=partner,
                      files={"file": (name, skimage_photo(name).read_bytes())})
    assert res.status_code == 200, res.text
    return res.content, json.loads(res.headers["X-Clearhouse-Signing"])


def _soft_binding_value(signed: bytes, media_type: str = "image/jpeg") -> tuple[str, str]:
    store = read_manifest(signed, media_type, anchors_pem=None).store or {}
    manifest = store["manifests"][store["active_manifest"]]
    binding = next(a["data"] for a in manifest["assertions"] if a["label"] == "c2pa.soft-binding")
    return binding["alg"], binding["blocks"][0]["value"]


def _reencode(data: bytes, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, fmt)
    return out.getvalue()


def test_by_binding_with_the_iscc_of_a_signed_file_returns_its_manifest(
        client: TestClient, keys: dict[str, dict[str, str]], home: Path) -> None:
    signed, summary = _sign(client, keys["partner"])
    _sign(client, keys["partner"], "coffee.png")  # another manifest in the repository
    manifest_id = summary["manifest_id"]
    alg, value = _soft_binding_value(signed)
    assert alg == ISCC
    query = urllib.parse.urlencode({"alg": alg, "value": value})
    got = client.get(f"/v1/matches/byBinding?{query}", headers=keys["partner"])
    assert got.status_code == 200, got.text
    assert got.json() == {"matches": [{"manifestId": manifest_id, "similarityScore": 100}]}
    posted = client.post("/v1/matches/byBinding", headers=keys["partner"],
                         json={"alg": alg, "value": value})
    assert posted.json() == got.json()

    # The stored manifest, as application/c2pa, is the one in the file: Trusted as its sidecar.
    res = client.get(f"/v1/manifests/{manifest_id}", headers=keys["partner"])
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/c2pa"
    anchors = (home / "keys" / "root.pem").read_bytes()
    context = c2pa.Context.from_dict(reader_settings(anchors_pem=anchors))
    with c2pa.Reader("image/jpeg", io.BytesIO(signed), res.content, context=context) as reader:
        assert reader.get_validation_state() == "Trusted"
        assert json.loads(reader.json())["active_manifest"] == manifest_id


def test_by_content_finds_a_stripped_copy_and_not_an_unsigned_photo(
        client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    signed, summary = _sign(client, keys["partner"])
    stripped = _reencode(signed, "PNG")
    assert read_manifest(stripped, "image/png", anchors_pem=None).kind == "no_manifest"
    res = client.post("/v1/matches/byContent", headers={**keys["partner"],
                                                        "Content-Type": "image/png"},
                      content=stripped)
    assert res.status_code == 200, res.text
    matches = res.json()["matches"]
    assert matches[0]["manifestId"] == summary["manifest_id"]
    assert 50 <= matches[0]["similarityScore"] <= 100
    same = client.post("/v1/matches/byContent?maxResults=1",
                       headers={**keys["partner"], "Content-Type": "image/jpeg"}, content=signed)
    assert same.json() == {"matches": [{"manifestId": summary["manifest_id"],
                                        "similarityScore": 100}]}
    _, value = _soft_binding_value(signed)
    hinted = client.post(f"/v1/matches/byContent?alg=io.iscc.v0&hintAlg=io.iscc.v0&"
                         f"hintValue={urllib.parse.quote(value)}",
                         headers={**keys["partner"], "Content-Type": "image/png"},
                         content=skimage_photo("astronaut.png").read_bytes())
    assert hinted.json()["matches"][0]["manifestId"] == summary["manifest_id"]
    wrong_alg = client.post("/v1/matches/byContent?alg=com.example.x",
                            headers={**keys["partner"], "Content-Type": "image/png"},
                            content=stripped)
    assert wrong_alg.status_code == 400
    other = client.post("/v1/matches/byContent",
                        headers={**keys["partner"], "Content-Type": "image/png"},
                        content=skimage_photo("astronaut.png").read_bytes())
    assert other.json() == {"matches": []}


def test_supported_algorithms_and_the_openapi_description(
        client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    res = client.get("/v1/services/supportedAlgorithms", headers=keys["partner"])
    assert res.status_code == 200
    assert {"alg": ISCC} in res.json()["fingerprints"] and res.json()["watermarks"] == []
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert paths["/v1/matches/byBinding"]["get"]["operationId"] == "queryByBinding"
    assert paths["/v1/matches/byBinding"]["post"]["operationId"] == "queryByLargeBinding"
    assert {p["name"] for p in paths["/v1/matches/byBinding"]["get"]["parameters"]} == {
        "alg", "value", "maxResults"}
    content = paths["/v1/matches/byContent"]["post"]["requestBody"]["content"]
    assert "image/*" in content and "video/*" in content
    assert "application/c2pa" in paths["/v1/manifests/{manifestId}"]["get"]["responses"]["200"][
        "content"]
    result = spec["components"]["schemas"]["SoftBindingQueryResult"]
    assert result["properties"]["matches"]["type"] == "array"
    match = spec["components"]["schemas"]["SoftBindingMatch"]
    assert set(match["properties"]) == {"manifestId", "endpoint", "similarityScore"}
    assert match["properties"]["similarityScore"]["maximum"] == 100


def test_only_partners_and_admins_resolve_and_bad_queries_are_4xx(
        client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    route = "/v1/services/supportedAlgorithms"
    assert client.get(route).status_code == 401
    assert client.get(route, headers=keys["legal"]).status_code == 403
    assert client.get(route, headers=keys["ml"]).status_code == 403
    assert client.get(route, headers=keys["admin"]).status_code == 200
    partner = keys["partner"]
    unknown = client.get("/v1/matches/byBinding?alg=com.example.x&value=AAAA", headers=partner)
    assert unknown.status_code == 400 and "not supported" in unknown.json()["error"]["message"]
    bad = client.get("/v1/matches/byBinding?alg=io.iscc.v0&value=%25%25", headers=partner)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_soft_binding"
    # As the spec says: an invalid query or body is 400 on these routes.
    no_value = client.get("/v1/matches/byBinding?alg=io.iscc.v0", headers=partner)
    assert no_value.status_code == 400 and "value" in no_value.json()["error"]["message"]
    assert client.get("/v1/matches/byBinding?alg=io.iscc.v0&value=AAAA&maxResults=0",
                      headers=partner).status_code == 400
    missing = client.get("/v1/manifests/urn:c2pa:nothing", headers=partner)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    text = client.post("/v1/matches/byContent", headers={**partner, "Content-Type": "image/png"},
                       content=b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert text.status_code == 415
    empty = client.post("/v1/matches/byContent", headers={**partner, "Content-Type": "image/png"},
                        content=b"")
    assert empty.status_code == 400
    extra = client.post("/v1/matches/byBinding", headers=partner,
                        json={"alg": ISCC, "value": "AAAA", "other": 1})
    assert extra.status_code == 400


def test_the_routes_are_rate_limited_per_key(home: Path, db_url: str) -> None:
    from api.app import create_app
    from registry.access import create_api_key
    from registry.db import session_scope

    app = create_app(Settings(home=home, database_url=db_url, sbr_requests_per_minute=3))
    with TestClient(app, raise_server_exceptions=False) as client:
        with session_scope(app.state.session_factory) as session:
            _, one = create_api_key(session, name="p1", role="partner")
            _, two = create_api_key(session, name="p2", role="partner")
        route = "/v1/services/supportedAlgorithms"
        first = {"Authorization": f"Bearer {one}"}
        assert [client.get(route, headers=first).status_code for _ in range(3)] == [200] * 3
        over = client.get(route, headers=first)
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
        assert over.json()["error"]["code"] == "too_many_requests"
        assert client.get(route, headers={"Authorization": f"Bearer {two}"}).status_code == 200
    app.state.engine.dispose()


# The response shapes of the C2PA Soft Binding Resolution API 1.1.0 (components
# c2pa.softBindingQueryResult and c2pa.softBindingAlgList), restated as JSON Schema.
QUERY_RESULT = {
    "type": "object",
    "properties": {"matches": {"type": "array", "items": {
        "type": "object",
        "properties": {"manifestId": {"type": "string"}, "endpoint": {"type": "string"},
                       "similarityScore": {"type": "integer", "minimum": 0, "maximum": 100}},
        "required": ["manifestId"]}}},
}
ALG_LIST = {
    "type": "object",
    "properties": {kind: {"type": "array", "items": {
        "type": "object", "properties": {"alg": {"type": "string"}}, "required": ["alg"]}}
        for kind in ("watermarks", "fingerprints")},
}


def test_answers_validate_against_the_specs_response_schemas(
        client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    import jsonschema

    signed, _ = _sign(client, keys["partner"])
    alg, value = _soft_binding_value(signed)
    partner = keys["partner"]
    answers = [
        client.get(f"/v1/matches/byBinding?{urllib.parse.urlencode({'alg': alg, 'value': value})}",
                   headers=partner),
        client.post("/v1/matches/byBinding", headers=partner, json={"alg": alg, "value": value}),
        client.post("/v1/matches/byContent", headers={**partner, "Content-Type": "image/png"},
                    content=_reencode(signed, "PNG")),
        client.post("/v1/matches/byContent", headers={**partner, "Content-Type": "image/png"},
                    content=skimage_photo("horse.png").read_bytes()),
    ]
    for res in answers:
        assert res.status_code == 200 and res.headers["content-type"] == "application/json"
        jsonschema.validate(res.json(), QUERY_RESULT)
    assert [len(r.json()["matches"]) for r in answers] == [1, 1, 1, 0]
    algs = client.get("/v1/services/supportedAlgorithms", headers=partner)
    jsonschema.validate(algs.json(), ALG_LIST)
    with pytest.raises(jsonschema.ValidationError):  # the schema does refuse a bad answer
        jsonschema.validate({"matches": [{"similarityScore": 101}]}, QUERY_RESULT)
