"""The cleared subset end to end on real photos, SQLite and PostgreSQL: clear, review, export the
subset in three forms, issue the certificate, verify it against each export (valid) and against
the full dataset (invalid, naming the excluded items); securesystemslib accepts the envelope."""

from __future__ import annotations

import base64
import copy
import json
import tarfile
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.datasets import open_dataset
from registry.clearance.export import export_cleared
from registry.errors import Conflict, InvalidInput
from registry.policy import load_policies
from registry.provenance.keys import ensure_studio_keys, trust_anchors_pem
from tests.registry.clearance import scenario

CLEARED = {k for k, v in scenario.EXPECTED.items() if v == "clear"}


def _clear(tmp_path: Path, db_url: str, factory: sessionmaker[Session],
           store: BlobStore) -> tuple[scenario.Scenario, int]:
    sc = scenario.build(tmp_path, factory, store)
    result = clearance.clear_dataset(
        factory, sc.dataset, use="ai_training", licensee=scenario.LICENSEE,
        model_family="lumen-vision-2", owner="ml-team", policies=load_policies(sc.policies),
        database_url=db_url, index_dir=tmp_path / "index", batch_size=8)
    return sc, result.job_id


def test_export_verify_against_the_subset_and_the_full_dataset(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    sc, job_id = _clear(tmp_path, db_url, session_factory, store)
    out = tmp_path / "out"
    out.mkdir()
    # Before review: the export holds the clear items only, and says what waits for review.
    with session_factory() as session:
        early = export_cleared(session, clearance.get_job(session, job_id), fmt="manifest",
                               out=out / "early.jsonl")
    assert early.items == len(CLEARED)
    assert early.left_out == {"blocked": 2, "review": 2, "error": 4}
    rows = [json.loads(line) for line in (out / "early.jsonl").read_text().splitlines()]
    assert {r["key"] for r in rows} == CLEARED and {r["verdict"] for r in rows} == {"clear"}

    with session_factory.begin() as session:
        clearance.review_item(session, job_id=job_id, item="limited/chelsea-small.jpg",
                              decision="allowed", comment="research model", actor="legal")
        clearance.review_item(session, job_id=job_id, item="limited/chelsea-mirror.jpg",
                              decision="blocked", comment="leave it out", actor="legal")
    cleared = CLEARED | {"limited/chelsea-small.jpg"}
    keys = ensure_studio_keys(tmp_path / "keys")
    anchors = trust_anchors_pem(None, tmp_path / "keys")
    with session_factory.begin() as session:
        job = clearance.get_job(session, job_id)
        manifest = export_cleared(session, job, fmt="manifest", out=out / "cleared.parquet")
        shards = export_cleared(session, job, fmt="webdataset", out=out / "shards",
                                shard_items=3)
        hf = export_cleared(session, job, fmt="hf", out=out / "hf")
        envelope = clearance.issue_certificate(session, job, private_key=keys.private_key,
                                               chain_pem=keys.chain_pem, actor="legal",
                                               policies=load_policies(sc.policies))
    assert manifest.items == shards.items == hf.items == len(cleared)
    assert manifest.digest == shards.digest == hf.digest
    assert shards.files == ["cleared-000000.tar", "cleared-000001.tar", "cleared-000002.tar"]
    with tarfile.open(out / "shards" / "cleared-000000.tar") as tar:
        meta = json.loads(tar.extractfile("00000000.json").read())  # type: ignore[union-attr]
    assert meta["key"] in cleared and meta["verdict"] == "clear"

    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == manifest.digest
    predicate = statement["predicate"]
    assert predicate["excluded"]["byVerdict"] == {"blocked": 3, "review": 0, "error": 4}
    reasons = {e["key"]: e["reason"] for e in predicate["excluded"]["list"]}
    assert reasons["limited/chelsea-mirror.jpg"].startswith("blocked in legal review by legal")
    assert reasons["closed/coffee-small.jpg"].startswith("studio asset")
    assert "harbor-lumen-training" in reasons["closed/coffee-small.jpg"]
    assert reasons["bad/bomb.png"].startswith("unreadable")
    assert predicate["modalities"] == {"image": {"items": 7, "sizeBand": "< 1M images"}}
    assert predicate["period"]["licences"] == ["harbor-lumen-training"]
    assert predicate["submittedDataset"]["name"] == "dataset"
    # No server path anywhere in the signed statement.
    assert str(tmp_path) not in json.dumps(statement)

    for dataset in (open_dataset(out / "cleared.parquet", item_roots=[sc.dataset]),
                    open_dataset(out / "shards"), open_dataset(out / "hf")):
        check = clearance.verify_certificate(envelope, anchors_pem=anchors, dataset=dataset)
        assert check.valid, (dataset.uri, check.reason)
    assert open_dataset(out / "hf").kind == "folder"
    assert {i.caption for i in open_dataset(out / "hf").items()} == {None}

    full = clearance.verify_certificate(envelope, anchors_pem=anchors,
                                        dataset=open_dataset(sc.dataset))
    assert not full.valid
    assert "this is the submitted dataset, not the cleared subset" in full.reason
    named = {d["key"]: d for d in full.differences}
    assert set(named) == set(scenario.EXPECTED) - cleared
    assert named["closed/coffee-bright.jpg"]["verdict"] == "blocked"
    assert "decompression bomb" in named["bad/bomb.png"]["reason"]

    # An independent DSSE verifier accepts the envelope with the studio's public key.
    key = SSlibKey.from_crypto(keys.private_key.public_key(),
                               keyid=envelope["signatures"][0]["keyid"])
    accepted = Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)
    assert list(accepted) == [envelope["signatures"][0]["keyid"]]


def test_an_export_refuses_changed_items_uncleared_training_copies_and_existing_targets(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    sc, job_id = _clear(tmp_path, db_url, session_factory, store)
    out = tmp_path / "out"
    out.mkdir()
    with session_factory() as session:
        job = clearance.get_job(session, job_id)
        with pytest.raises(InvalidInput, match="cleared items only"):
            export_cleared(session, job, fmt="hf", out=out / "hf", verdicts=["blocked"])
        blocked = export_cleared(session, job, fmt="manifest", out=out / "blocked.csv",
                                 verdicts=["blocked"])
        assert blocked.items == 2 and "clear" in blocked.left_out
        with pytest.raises(InvalidInput, match="already exists"):
            export_cleared(session, job, fmt="manifest", out=out / "blocked.csv")
        with pytest.raises(InvalidInput, match=r"\.jsonl, \.csv or \.parquet"):
            export_cleared(session, job, fmt="manifest", out=out / "cleared.txt")
        (sc.dataset / "other/horse.jpg").write_bytes(
            (sc.dataset / "other/camera.jpg").read_bytes())
        with pytest.raises(Conflict, match=r"other/horse\.jpg.*changed since the clearance"):
            export_cleared(session, job, fmt="webdataset", out=out / "shards")
    assert not (out / "shards").exists()
    assert [p.name for p in out.iterdir()] == ["blocked.csv"]  # no partial output left behind
