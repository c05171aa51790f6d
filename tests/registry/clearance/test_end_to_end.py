"""End to end on real photographs, on SQLite and PostgreSQL: catalog + policies -> clearance ->
report in three formats -> legal review -> certificate issued -> verified offline."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.audit import AuditEvent
from registry.catalog import BlobStore
from registry.clearance.datasets import open_dataset
from registry.errors import Conflict, InvalidInput
from registry.policy import load_policies
from registry.provenance.keys import ensure_studio_keys, trust_anchors_pem
from tests.photos import skimage_photo
from tests.registry.clearance import scenario


@pytest.fixture
def cleared(tmp_path: Path, db_url: str, session_factory: sessionmaker[Session],
            store: BlobStore) -> tuple[scenario.Scenario, clearance.Clearance]:
    sc = scenario.build(tmp_path, session_factory, store)
    result = clearance.clear_dataset(
        session_factory, sc.dataset, use="ai_training", licensee=scenario.LICENSEE,
        model_family="lumen-vision-2", owner="ml-team", policies=load_policies(sc.policies),
        database_url=db_url, index_dir=tmp_path / "index", batch_size=4,
    )
    return sc, result


def test_every_item_gets_the_expected_verdict_and_the_report_in_three_formats(  # type: ignore[no-untyped-def]
    cleared, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    sc, result = cleared
    verdicts = {item["key"]: item["verdict"] for item in result.report["items"]}
    assert verdicts == scenario.EXPECTED
    assert result.summary == {"clear": 6, "blocked": 2, "review": 2, "error": 4, "total": 14}
    assert result.exit_code == 1  # blocked items present
    _check_matches(sc, result)
    _check_reports(result, session_factory, store)


def _check_matches(sc: scenario.Scenario, result: clearance.Clearance) -> None:
    items = {item["key"]: item for item in result.report["items"]}
    exact = items["open/astronaut-exact.png"]["matches"]
    assert [(m["asset_id"], m["signal"], m["distance"]) for m in exact] == [
        (sc.asset_ids["astronaut.png"], "sha256", 0)]
    denied = items["closed/coffee-small.jpg"]["matches"][0]
    assert denied["asset_id"] == sc.asset_ids["coffee.png"]
    assert denied["decision"] == "denied"
    assert "harbor-lumen-training" in denied["explanation"]
    assert items["limited/chelsea-mirror.jpg"]["matches"][0]["decision"] == "review"
    for key in scenario.EXPECTED:
        if key.startswith("other/"):
            assert items[key]["matches"] == []
    assert "decompression bomb" in items["bad/bomb.png"]["error"]
    assert "truncated" in items["bad/truncated.jpg"]["error"]
    assert "not a recognised image format" in items["bad/notes.png"]["error"]
    assert all(item["sha256"] for item in result.report["items"])


def _check_reports(result: clearance.Clearance, session_factory: sessionmaker[Session],
                   store: BlobStore) -> None:
    report = result.report
    assert set(report) >= {"job", "dataset", "summary", "items"}
    required_item = set(clearance.REPORT_SCHEMA["properties"]["items"]["items"]["required"])
    required_match = set(
        clearance.REPORT_SCHEMA["properties"]["items"]["items"]["properties"]["matches"]["items"][
            "required"])
    for item in report["items"]:
        assert required_item <= set(item)
        for match in item["matches"]:
            assert required_match <= set(match)
    assert report["dataset"]["digest"]["sha256"]
    assert report["job"]["status"] == "finished"
    assert report["job"]["policy_versions"][0]["file"] == "harbor-lumen.yaml"
    with session_factory() as session:
        job = clearance.get_job(session, result.job_id)
        text, _media_type = clearance.render_report(session, job, "json")
        assert json.loads(text)["summary"] == report["summary"]
        csv_text, _ = clearance.render_report(session, job, "csv")
        html, html_type = clearance.render_report(session, job, "html", store=store)
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["key"] for r in rows} == set(scenario.EXPECTED)
    assert {r["verdict"] for r in rows if r["key"] == "closed/coffee-bright.jpg"} == {"blocked"}
    assert html_type == "text/html"
    # A thumbnail per studio item and one per matched catalog asset, every picture inline
    # (standalone page); blocked and review items come first.
    assert html.count("data:image/jpeg;base64,") == len(scenario.STUDIO_ITEMS) + 3
    assert 'src="http' not in html
    first_page = html[html.index('<tbody id="rows">'):html.index("</tbody>")]
    order = [first_page.index(k) for k in ("closed/coffee-bright.jpg", "limited/chelsea",
                                           "bad/bomb.png", "other/horse.jpg")]
    assert order == sorted(order)
    assert "a copy of “coffee”" in first_page and f"({scenario.HOLDER})" in first_page


def test_legal_review_then_certificate_then_offline_verification(  # type: ignore[no-untyped-def]
    cleared, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    sc, result = cleared
    keys = ensure_studio_keys(tmp_path / "keys")
    anchors = trust_anchors_pem(None, tmp_path / "keys")
    review = [i for i in result.report["items"] if i["verdict"] == "review"]
    assert len(review) == 2
    with session_factory() as session:
        job = clearance.get_job(session, result.job_id)
        with pytest.raises(Conflict, match="awaiting legal review"):
            clearance.issue_certificate(session, job, private_key=keys.private_key,
                                        chain_pem=keys.chain_pem, actor="legal-anna")
    with session_factory.begin() as session:
        with pytest.raises(InvalidInput, match="comment"):
            clearance.review_item(session, job_id=result.job_id, item=review[0]["item"],
                                  decision="allowed", comment=" ", actor="legal-anna")
        with pytest.raises(Conflict, match="not awaiting review"):
            clearance.review_item(session, job_id=result.job_id, item="closed/coffee-small.jpg",
                                  decision="allowed", comment="no", actor="legal-anna")
        clearance.review_item(session, job_id=result.job_id, item=review[0]["item"],
                              decision="allowed", comment="research model: fine",
                              actor="legal-anna")
        clearance.review_item(session, job_id=result.job_id, item=review[1]["key"],
                              decision="blocked", comment="mirrored copy: leave it out",
                              actor="legal-ben")
    with session_factory.begin() as session:
        events = list(session.scalars(
            select(AuditEvent).where(AuditEvent.action == "clearance.review")
            .order_by(AuditEvent.id)))
        assert [(e.actor, e.detail["decision"], e.detail["comment"]) for e in events] == [
            ("legal-anna", "allowed", "research model: fine"),
            ("legal-ben", "blocked", "mirrored copy: leave it out"),
        ]
        job = clearance.get_job(session, result.job_id)
        report = clearance.build_report(session, job)
        assert report["summary"]["review"] == 0
        assert report["summary"]["clear"] == 7 and report["summary"]["blocked"] == 3
        envelope = clearance.issue_certificate(session, job, private_key=keys.private_key,
                                               chain_pem=keys.chain_pem, actor="legal-anna")
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    predicate = statement["predicate"]
    # The subject is the cleared subset; the submitted dataset is named apart.
    assert statement["subject"][0]["name"] == f"clearhouse:clearance-{result.job_id}/cleared-subset"
    assert statement["subject"][0]["digest"]["sha256"] != report["dataset"]["digest"]["sha256"]
    assert predicate["submittedDataset"]["digest"]["sha256"] == report["dataset"]["digest"][
        "sha256"]
    assert predicate["clearedSubset"]["items"] == 7
    assert (predicate["use"], predicate["licensee"], predicate["model"]) == (
        "ai_training", scenario.LICENSEE, "lumen-vision-2")
    assert predicate["counts"] == {"clear": 7, "blocked": 3, "review": 0, "error": 4}
    assert predicate["report"]["digest"]["sha256"] == clearance.report_digest(report)
    assert predicate["policyVersions"][0]["file"] == "harbor-lumen.yaml"
    assert predicate["catalogSnapshot"]["assets"] == 3
    assert predicate["matchesByRightsholder"] == {scenario.HOLDER: len(scenario.STUDIO_ITEMS)}
    assert predicate["matchesByLicence"] == {"harbor-lumen-training": len(scenario.STUDIO_ITEMS)}

    # The submitted dataset minus the items the certificate excludes is the cleared subset.
    subset = tmp_path / "subset"
    shutil.copytree(sc.dataset, subset)
    for key, verdict in scenario.EXPECTED.items():
        if verdict != "clear" and key != review[0]["key"]:
            (subset / key).unlink()
    dataset = open_dataset(subset)
    check = clearance.verify_certificate(json.dumps(envelope), anchors_pem=anchors,
                                         dataset=dataset)
    assert check.valid, check.reason
    assert check.dataset_checked

    # A changed dataset fails with the reason.
    shutil.copy(subset / "other/horse.jpg", subset / "other/horse-2.jpg")
    changed = clearance.verify_certificate(envelope, anchors_pem=anchors, dataset=dataset)
    assert not changed.valid and "dataset digest mismatch" in changed.reason
    assert "another copy of a cleared item" in changed.reason
    (subset / "other/horse-2.jpg").unlink()
    shutil.copy(skimage_photo("brick.png"), subset / "other/brick.png")
    added = clearance.verify_certificate(envelope, anchors_pem=anchors, dataset=dataset)
    assert not added.valid
    assert [d["key"] for d in added.differences] == ["other/brick.png"]
    assert "1 item(s) not in the cleared subset: other/brick.png" in added.reason

    # A tampered certificate fails with the reason.
    forged = dict(statement, predicate=dict(predicate, counts={"clear": 10, "blocked": 0,
                                                               "review": 0, "error": 0}))
    tampered = dict(envelope, payload=base64.b64encode(json.dumps(forged).encode()).decode())
    bad = clearance.verify_certificate(tampered, anchors_pem=anchors)
    assert not bad.valid and "signature does not match" in bad.reason

    # A certificate signed by another studio's key is not trusted here.
    other = ensure_studio_keys(tmp_path / "other-keys")
    foreign = clearance.sign_statement(statement, private_key=other.private_key,
                                       chain_pem=other.chain_pem)
    untrusted = clearance.verify_certificate(foreign, anchors_pem=anchors)
    assert not untrusted.valid and "trust anchor" in untrusted.reason

    with session_factory.begin() as session, pytest.raises(Conflict, match="certified"):
        clearance.review_item(session, job_id=result.job_id, item=review[0]["item"],
                              decision="blocked", comment="changed my mind", actor="legal-anna")
