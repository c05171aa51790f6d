"""Policy HTTP API: batch decisions, listing, reload (admin) and ODRL, on both backends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.audit import events
from registry.db import session_scope
from registry.policy import list_policy_versions
from registry.settings import Settings
from tests.factories import make_asset, make_franchise, make_rightsholder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def policies_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


@pytest.fixture
def settings(home: Path, db_url: str, policies_dir: Path) -> Settings:
    return Settings(home=home, database_url=db_url, policies_dir=policies_dir)


@pytest.fixture
def demo_assets(client: TestClient) -> dict[str, tuple[int, str]]:
    """Two Harbor Lights stills (one in the press kit) and one Skyreach image: id, sha256."""
    with session_scope(client.app.state.session_factory) as session:
        store = client.app.state.store
        meridian = make_rightsholder(session, "Meridian Pictures")
        harbor = make_franchise(session, meridian, "Harbor Lights")
        northwind = make_rightsholder(session, "Northwind Games")
        skyreach = make_franchise(session, northwind, "Skyreach")
        made = {
            "press": make_asset(session, store, photo="astronaut.png", holder=meridian,
                                franchise=harbor, tags=("press-kit",)),
            "still": make_asset(session, store, photo="coffee.png", holder=meridian,
                                franchise=harbor),
            "game": make_asset(session, store, photo="rocket.jpg", holder=northwind,
                               franchise=skyreach),
        }
        return {k: (a.id, a.sha256) for k, a in made.items()}


def test_batch_decisions_by_id_and_sha256_with_explanations(
    client: TestClient, keys: dict[str, dict[str, str]], demo_assets: dict[str, tuple[int, str]]
) -> None:
    body = {
        "assets": [demo_assets["press"][0], demo_assets["still"][1],
                   str(demo_assets["game"][0])],
        "licensee": "Lumen AI",
        "use": "ai_generative_training",
        "on": "2026-11-25",
    }
    r = client.post("/v1/decisions", headers=keys["ml"], json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    got = [(d["asset_id"], d["outcome"], d["rule"]) for d in data["decisions"]]
    assert got == [
        (demo_assets["press"][0], "allowed", "more_specific_scope"),
        (demo_assets["still"][0], "denied", "not_allowed"),
        (demo_assets["game"][0], "denied", "not_allowed"),  # no generative training, for anyone
    ]
    first = data["decisions"][0]
    assert first["decided_by"] == "meridian-lumen-harbor-lights#grants[2]"
    assert first["decided_by_version"]["file"] == "meridian-lumen-harbor-lights.yaml"
    assert any(not c["applied"] and "overridden" in c["reason"] for c in first["explanation"])
    assert {v["file"] for v in data["policy_versions"]} >= {"northwind-games.yaml"}

    legal = client.post("/v1/decisions", headers=keys["legal"],
                        json={**body, "use": "ai_training"})
    assert [d["outcome"] for d in legal.json()["decisions"]] == ["allowed", "allowed", "denied"]
    with session_scope(client.app.state.session_factory) as session:
        recorded = {v.file for v in list_policy_versions(session)}
        logged = events(session, subject="licensee:Lumen AI")
    assert "meridian-lumen-harbor-lights.yaml" in recorded
    assert [e.detail["outcomes"] for e in logged] == [{"allowed": 2, "denied": 1},
                                                      {"allowed": 1, "denied": 2}]


def test_roles_legal_and_ml_read_admin_reloads(
    client: TestClient, keys: dict[str, dict[str, str]], demo_assets: dict[str, tuple[int, str]]
) -> None:
    body = {"assets": [demo_assets["still"][0]], "licensee": "Lumen AI", "use": "ai_training"}
    assert client.post("/v1/decisions", json=body).status_code == 401
    assert client.post("/v1/decisions", headers=keys["partner"], json=body).status_code == 403
    for role in ("legal", "ml", "admin"):
        assert client.get("/v1/policies", headers=keys[role]).status_code == 200
    assert client.get("/v1/policies", headers=keys["partner"]).status_code == 403
    for role in ("legal", "ml", "partner"):
        r = client.post("/v1/policies/reload", headers=keys[role])
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.post("/v1/policies/reload", headers=keys["admin"]).status_code == 200


def test_a_failed_reload_names_file_line_field_and_keeps_the_policies_in_force(
    client: TestClient, keys: dict[str, dict[str, str]], policies_dir: Path
) -> None:
    before = client.get("/v1/policies", headers=keys["legal"]).json()
    (policies_dir / "broken.yaml").write_text(
        "id: broken\nlicensor: Meridian Pictures\nlicensee: Lumen AI\ngrants:\n"
        "  - use: ai_dreaming\n    permission: allowed\n", encoding="utf-8")
    r = client.post("/v1/policies/reload", headers=keys["admin"])
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_policy"
    assert (err["detail"]["file"], err["detail"]["line"], err["detail"]["field"]) == (
        "broken.yaml", 5, "grants[0].use")
    assert client.get("/v1/policies", headers=keys["legal"]).json() == before


def test_policies_list_names_each_file_version(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    data = client.get("/v1/policies", headers=keys["ml"]).json()
    ids = {p["id"] for p in data["policies"]}
    assert {"northwind-internal-ml", "meridian-lumen-harbor-lights",
            "meridian-lumen-2024-pilot", "meridian-internal-inference"} <= ids
    assert all(len(v["sha256"]) == 64 and v["loaded_at"] for v in data["versions"])
    odrl = client.get("/v1/policies/meridian-lumen-harbor-lights/odrl", headers=keys["partner"])
    assert odrl.status_code == 200 and odrl.json()["@type"] == "Agreement"
    assert client.get("/v1/policies/nope/odrl", headers=keys["legal"]).status_code == 404
    schema = client.get("/v1/policies/schema", headers=keys["legal"]).json()
    assert "oneOf" in schema


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"assets": [1], "licensee": "Lumen AI", "use": "ai_dreaming"}, 422),
        ({"assets": [], "licensee": "Lumen AI", "use": "ai_training"}, 422),
        ({"assets": [1], "licensee": "", "use": "ai_training"}, 422),
        ({"assets": ["not-a-key"], "licensee": "Lumen AI", "use": "ai_training"}, 422),
        ({"assets": [999999], "licensee": "Lumen AI", "use": "ai_training"}, 404),
        ({"assets": [2**70], "licensee": "Lumen AI", "use": "ai_training"}, 404),
        ({"assets": ["ab" * 32], "licensee": "Lumen AI", "use": "ai_training"}, 404),
        ({"assets": [1], "licensee": "Lumen AI", "use": "ai_training", "on": "soon"}, 422),
        ({"assets": [1], "licensee": "Lumen AI", "use": "ai_training", "extra": 1}, 422),
    ],
    ids=["unknown use", "no assets", "empty licensee", "garbage key", "unknown id",
         "huge id", "unknown sha", "bad date", "unknown field"],
)
def test_bad_decision_requests_answer_4xx_with_the_error_shape(
    client: TestClient, keys: dict[str, dict[str, str]], body: dict[str, object], status: int
) -> None:
    r = client.post("/v1/decisions", headers=keys["ml"], json=body)
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"code", "message", "detail"}


def test_bad_json_answers_400(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    r = client.post("/v1/decisions", headers={**keys["ml"], "content-type": "application/json"},
                    content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
