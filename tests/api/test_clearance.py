"""The clearance HTTP API on both backends: submit (path or archive), status, reports, roles,
legal review, certificates, and bad input answered with 4xx."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.access import create_api_key
from registry.db import session_scope
from registry.settings import Settings
from tests.registry.clearance import scenario


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return Settings(home=home, database_url=db_url, max_upload_bytes=8 * 1024 * 1024,
                    embedded_worker=True,  # the API runs the jobs it accepts
                    allowed_roots=[allowed],
                    policies_dir=scenario.write_policies(tmp_path / "policies"))


@pytest.fixture
def dataset(client: TestClient, settings: Settings) -> Path:
    scenario.import_catalog(client.app.state.session_factory, client.app.state.store)
    return scenario.write_dataset(settings.allowed_roots[0] / "photos")


def _submit(client: TestClient, headers: dict[str, str], path: Path, **extra: object) -> object:
    body = {"dataset": str(path), "use": "ai_training", "licensee": scenario.LICENSEE,
            "model": "lumen-vision-2", **extra}
    return client.post("/v1/clearances", headers=headers, json=body)


def test_ml_submits_a_dataset_and_reads_status_and_reports(
    client: TestClient, keys: dict[str, dict[str, str]], dataset: Path
) -> None:
    ml, legal = keys["ml"], keys["legal"]
    res = _submit(client, ml, dataset)
    assert res.status_code == 202, res.text
    job_id = res.json()["id"]
    status = client.get(f"/v1/clearances/{job_id}", headers=ml).json()
    assert status["status"] == "finished"
    assert status["done_items"] == status["total_items"] == len(scenario.EXPECTED)
    assert status["summary"] == {"clear": 6, "blocked": 2, "review": 2, "error": 4}

    report = client.get(f"/v1/clearances/{job_id}/report", headers=ml).json()
    assert {i["key"]: i["verdict"] for i in report["items"]} == scenario.EXPECTED
    as_csv = client.get(f"/v1/clearances/{job_id}/report?format=csv", headers=legal)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0].startswith("path,key,id,sha256,verdict")
    html = client.get(f"/v1/clearances/{job_id}/report?format=html", headers=legal)
    assert html.headers["content-type"].startswith("text/html")
    assert "data:image/jpeg;base64," in html.text
    bad = client.get(f"/v1/clearances/{job_id}/report?format=pdf", headers=ml)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"

    # Another ML key cannot read this job; legal reads every job; partners read none.
    with session_scope(client.app.state.session_factory) as session:
        _, other = create_api_key(session, name="other-ml", role="ml")
    other_ml = {"Authorization": f"Bearer {other}"}
    assert client.get(f"/v1/clearances/{job_id}", headers=other_ml).status_code == 403
    assert client.get("/v1/clearances", headers=other_ml).json() == []
    assert [j["id"] for j in client.get("/v1/clearances", headers=legal).json()] == [job_id]
    assert client.get(f"/v1/clearances/{job_id}", headers=keys["partner"]).status_code == 403
    assert client.get(f"/v1/clearances/{job_id}").status_code == 401
    assert client.get("/v1/clearances/9999", headers=legal).status_code == 404


def test_review_by_legal_then_certificate_and_verification(
    client: TestClient, keys: dict[str, dict[str, str]], dataset: Path
) -> None:
    ml, legal = keys["ml"], keys["legal"]
    job_id = _submit(client, ml, dataset).json()["id"]
    early = client.post(f"/v1/clearances/{job_id}/certificate", headers=ml)
    assert early.status_code == 409 and "awaiting legal review" in early.json()["error"]["message"]

    items = client.get(f"/v1/clearances/{job_id}/items?verdict=review", headers=legal).json()
    assert len(items) == 2
    first, second = items[0]["item"], items[1]["item"]
    url = f"/v1/clearances/{job_id}/items/{{}}/review"
    body = {"decision": "allowed", "comment": "research use agreed"}
    assert client.post(url.format(first), headers=ml, json=body).status_code == 403
    wrong = client.post(url.format(first), headers=legal, json={"decision": "maybe",
                                                                "comment": "x"})
    assert wrong.status_code == 422
    decided = client.post(url.format(first), headers=legal, json=body)
    assert decided.status_code == 200 and decided.json()["verdict"] == "clear"
    assert decided.json()["review"]["by"] == "test-legal"
    blocked = client.post(url.format(second), headers=legal,
                          json={"decision": "blocked", "comment": "mirrored copy"})
    assert blocked.json()["verdict"] == "blocked"

    issued = client.post(f"/v1/clearances/{job_id}/certificate", headers=ml)
    assert issued.status_code == 201, issued.text
    envelope = issued.json()
    assert client.get(f"/v1/clearances/{job_id}/certificate", headers=legal).json() == envelope
    check = client.post("/v1/certificates/verify", headers=keys["partner"], json=envelope).json()
    assert check["valid"] and check["counts"] == {"clear": 7, "blocked": 3, "review": 0,
                                                  "error": 4}
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["licensee"] = "Someone Else"
    forged = dict(envelope, payload=base64.b64encode(json.dumps(statement).encode()).decode())
    bad = client.post("/v1/certificates/verify", headers=legal, json=forged).json()
    assert not bad["valid"] and "signature does not match" in bad["reason"]


def test_an_uploaded_zip_archive_is_cleared(
    client: TestClient, keys: dict[str, dict[str, str]], dataset: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key in ("closed/coffee-small.jpg", "other/horse.jpg", "bad/notes.png"):
            archive.write(dataset / key, key)
        archive.writestr("../escape.jpg", b"x")
    form = {"use": "ai_training", "licensee": scenario.LICENSEE}
    res = client.post("/v1/clearances/archive", headers=keys["ml"], data=form,
                      files={"file": ("photos.zip", buffer.getvalue())})
    assert res.status_code == 202, res.text
    report = client.get(f"/v1/clearances/{res.json()['id']}/report", headers=keys["ml"]).json()
    verdicts = {i["key"]: i["verdict"] for i in report["items"]}
    assert verdicts == {"closed/coffee-small.jpg": "blocked", "other/horse.jpg": "clear",
                        "bad/notes.png": "error", "../escape.jpg": "error"}
    wrong = client.post("/v1/clearances/archive", headers=keys["ml"], data=form,
                        files={"file": ("photos.rar", b"Rar!")})
    assert wrong.status_code == 422


def test_bad_submissions_answer_4xx_with_the_error_shape(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    ml = keys["ml"]
    outside = tmp_path / "outside"
    outside.mkdir()
    res = _submit(client, ml, outside)
    assert res.status_code == 422
    assert "outside the allowed dataset roots" in res.json()["error"]["message"]
    sneaky = _submit(client, ml, settings.allowed_roots[0] / ".." / "outside")
    assert sneaky.status_code == 422
    missing = _submit(client, ml, settings.allowed_roots[0] / "missing")
    assert missing.status_code == 422 and "no such file" in missing.json()["error"]["message"]
    assert _submit(client, ml, settings.allowed_roots[0], use="painting").status_code == 422
    assert _submit(client, keys["legal"], settings.allowed_roots[0]).status_code == 403
    assert _submit(client, keys["partner"], settings.allowed_roots[0]).status_code == 403
    garbage = client.post("/v1/clearances", headers={**ml, "content-type": "application/json"},
                          content=b"{not json")
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "bad_json"


def test_a_restarted_server_finishes_the_jobs_a_killed_one_left(
    settings: Settings, tmp_path: Path
) -> None:
    """A job recorded but never run (as after a kill) is finished when the app starts again."""
    from api.app import create_app
    from registry import clearance

    first = create_app(settings)
    factory = first.state.session_factory
    scenario.import_catalog(factory, first.state.store)
    dataset = scenario.write_dataset(settings.allowed_roots[0] / "photos")
    with session_scope(factory) as session:
        job_id = clearance.submit_job(
            session, dataset=clearance.open_dataset(dataset), use="ai_training",
            licensee=scenario.LICENSEE, model_family="lumen-vision-2", owner="test",
        ).id
    first.state.engine.dispose()

    second = create_app(settings)
    with TestClient(second):
        second.state.resume_thread.join(120)
        with session_scope(second.state.session_factory) as session:
            job = clearance.get_job(session, job_id)
            report = clearance.build_report(session, job)
            status = job.status
    second.state.engine.dispose()
    assert status == "finished"
    assert {i["key"]: i["verdict"] for i in report["items"]} == scenario.EXPECTED
