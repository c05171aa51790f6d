"""GET /v1/clearances/{id}/export and GET /v1/summaries/eu-training-content on both backends."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.settings import Settings
from tests.registry.clearance import scenario

CLEARED = {k for k, v in scenario.EXPECTED.items() if v == "clear"}


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return Settings(home=home, database_url=db_url, embedded_worker=True, allowed_roots=[allowed],
                    policies_dir=scenario.write_policies(tmp_path / "policies"))


def test_the_cleared_subset_downloads_as_a_manifest_a_shard_or_an_imagefolder(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    scenario.import_catalog(client.app.state.session_factory, client.app.state.store)
    dataset = scenario.write_dataset(settings.allowed_roots[0] / "photos")
    ml = keys["ml"]
    res = client.post("/v1/clearances", headers=ml, json={
        "dataset": str(dataset), "use": "ai_training", "licensee": scenario.LICENSEE})
    job = res.json()["id"]
    manifest = client.get(f"/v1/clearances/{job}/export?format=manifest", headers=ml)
    assert manifest.status_code == 200, manifest.text
    rows = [json.loads(line) for line in manifest.text.splitlines()]
    assert {r["key"] for r in rows} == CLEARED
    shard = client.get(f"/v1/clearances/{job}/export?format=webdataset", headers=ml)
    with tarfile.open(fileobj=io.BytesIO(shard.content)) as tar:
        names = tar.getnames()
    assert len([n for n in names if n.endswith(".json")]) == len(CLEARED)
    hf = client.get(f"/v1/clearances/{job}/export?format=hf", headers=ml)
    with tarfile.open(fileobj=io.BytesIO(hf.content)) as tar:
        assert f"clearance-{job}-hf/train/metadata.jsonl" in tar.getnames()
    blocked = client.get(f"/v1/clearances/{job}/export?format=hf&verdict=blocked", headers=ml)
    assert blocked.status_code == 422 and "cleared items only" in blocked.text
    listed = client.get(f"/v1/clearances/{job}/export?format=manifest&type=csv&verdict=blocked",
                        headers=ml)
    assert listed.text.splitlines()[0] == "key,path,sha256,verdict,id,caption,url"
    assert len(listed.text.splitlines()) == 3
    assert client.get(f"/v1/clearances/{job}/export?format=zip", headers=ml).status_code == 422
    assert client.get(f"/v1/clearances/{job}/export?format=hf",
                      headers=keys["partner"]).status_code == 403
    # Nothing is left behind on the server.
    assert not any((settings.jobs_dir / "exports").iterdir())

    sha = rows[0]["sha256"]
    found = client.get(f"/v1/clearances/{job}/verdicts", params={"ref": sha}, headers=ml)
    assert found.status_code == 200 and found.json()["items"][0]["verdict"] == "clear"
    by_key = client.get(f"/v1/clearances/{job}/verdicts",
                        params={"ref": "closed/coffee-small.jpg"}, headers=ml)
    assert by_key.json()["items"][0]["verdict"] == "blocked"
    assert client.get(f"/v1/clearances/{job}/verdicts", params={"ref": "nope"},
                      headers=ml).status_code == 404

    waiting = client.get(f"/v1/summaries/eu-training-content?job={job}", headers=ml)
    assert waiting.status_code == 409 and "awaiting legal review" in waiting.text
