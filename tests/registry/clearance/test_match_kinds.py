"""Clearance with match kinds (issue 11), on SQLite and PostgreSQL: policy decides copies and
derivatives; a `similar` match (a hash near its threshold that no stage verified) goes to review
with what the policy would say, and never blocks nor clears on its own."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.reports import REPORT_SCHEMA, report_csv
from registry.policy import load_policies
from tests.photos import skimage_photo
from tests.registry.clearance import scenario
from tests.registry.fingerprint.test_kinds import thumbnail
from tests.registry.fingerprint.transforms_wild import open_picture


def test_a_similar_match_goes_to_review_even_for_a_denied_asset_and_a_copy_is_blocked(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    import jsonschema

    ids = scenario.import_catalog(session_factory, store)
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    coffee = open_picture(skimage_photo("coffee.png"))
    # coffee is `closed` (notAllowed): a 32 px thumbnail of it, only its hash comes near.
    thumbnail(skimage_photo("coffee.png")).save(dataset / "coffee-thumb.png")
    coffee.resize((coffee.width // 2, coffee.height // 2)).save(dataset / "coffee-small.jpg")
    result = clearance.clear_dataset(
        session_factory, dataset, use="ai_training", licensee=scenario.LICENSEE,
        model_family="lumen-vision-2", owner="ml-team",
        policies=load_policies(scenario.write_policies(tmp_path / "policies")),
        database_url=db_url, index_dir=tmp_path / "index", batch_size=4,
    )
    items = {item["key"]: item for item in result.report["items"]}
    thumb, small = items["coffee-thumb.png"], items["coffee-small.jpg"]
    assert small["verdict"] == "blocked"
    assert [(m["asset_id"], m["kind"], m["decision"]) for m in small["matches"]] == [
        (ids["coffee.png"], "copy", "denied")]
    assert thumb["verdict"] == "review"
    [match] = thumb["matches"]
    assert (match["asset_id"], match["kind"], match["signal"], match["decision"]) == (
        ids["coffee.png"], "similar", "pdq", "review")
    assert match["rule"] is None and "similar, not verified" in match["explanation"]
    assert "if it is, denied" in match["explanation"]
    jsonschema.validate(result.report, REPORT_SCHEMA)
    rows = list(csv.DictReader(io.StringIO(report_csv(result.report))))
    assert {(r["key"], r["kind"]) for r in rows} == {("coffee-thumb.png", "similar"),
                                                     ("coffee-small.jpg", "copy")}
