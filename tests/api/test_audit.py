"""GET /v1/audit and /v1/audit/verify: legal and admin read the chain; API actions name the key
id and role (issue 13, finding 9)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_legal_reads_the_audit_log_with_key_ids_and_roles(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    res = client.post("/v1/rightsholders", headers=keys["legal"], json={"name": "Harbor"})
    assert res.status_code == 201
    for role in ("ml", "partner"):
        assert client.get("/v1/audit", headers=keys[role]).status_code == 403
    assert client.get("/v1/audit").status_code == 401
    log = client.get("/v1/audit", headers=keys["legal"]).json()["events"]
    newest = log[0]
    assert newest["action"] == "rightsholder.create"
    assert newest["actor_role"] == "legal" and isinstance(newest["actor_key_id"], int)
    assert newest["actor"] == "test-legal"
    page = client.get(f"/v1/audit?before_seq={newest['seq']}&limit=1",
                      headers=keys["admin"]).json()["events"]
    assert [e["seq"] for e in page] == [newest["seq"] - 1]
    check = client.get("/v1/audit/verify", headers=keys["admin"]).json()
    assert check["ok"] is True and check["entries"] == newest["seq"]
