"""The EU AI Act training-content summary of a job over a mixed dataset (licensed studio assets,
opted-out items, unrelated photos; an HF imagefolder whose metadata gives item URLs): the right
counts per section, and JSON valid against the schema shipped in the repo (read with jsonschema)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import jsonschema
import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.summary import build_eu_summary, render_markdown
from registry.errors import Conflict
from registry.policy import load_policies
from tests.photos import skimage_photo
from tests.registry.clearance import scenario
from tests.registry.clearance.test_optout import _png_with_xmp

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "registry/clearance/eu_summary.schema.json"


def _jpeg(name: str, factor: float = 1.0) -> bytes:
    image = Image.open(skimage_photo(name)).convert("RGB")
    image = image.resize((round(image.width * factor), round(image.height * factor)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


ITEMS = {  # file -> (bytes maker, url)
    "astronaut-small.jpg": (lambda: _jpeg("astronaut.png", 0.6), "https://www.studio.example/a"),
    "astronaut-optout.png": (lambda: _png_with_xmp(
        "astronaut.png", 'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"'),
        "https://cdn.studio.example/b"),
    "coffee-small.jpg": (lambda: _jpeg("coffee.png", 0.5), "https://img.example.org/c"),
    "horse-iptc.png": (lambda: _png_with_xmp(
        "horse.png", 'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"'),
        "https://photos.example.org/h"),
    "camera-tdm.png": (lambda: _png_with_xmp("camera.png", 'tdm:reservation="1"'),
                       "https://photos.example.org/k"),
    "motorcycle.jpg": (lambda: _jpeg("motorcycle_left.png"), "https://www.studio.example/m"),
}


def test_the_summary_counts_each_section_and_validates_against_the_shipped_schema(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    scenario.import_catalog(session_factory, store)
    folder = tmp_path / "hf" / "train"
    folder.mkdir(parents=True)
    for name, (make, _) in ITEMS.items():
        (folder / name).write_bytes(make())
    (folder / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": name, "text": f"photo {name}", "url": url}) + "\n"
        for name, (_, url) in ITEMS.items()))
    result = clearance.clear_dataset(
        session_factory, tmp_path / "hf", use="ai_training", licensee=scenario.LICENSEE,
        model_family="lumen-vision-2", owner="ml",
        policies=load_policies(scenario.write_policies(tmp_path / "policies")),
        database_url=db_url, index_dir=tmp_path / "index")
    verdicts = {i["key"].removeprefix("train/"): i["verdict"] for i in result.report["items"]}
    assert verdicts == {"astronaut-small.jpg": "clear", "astronaut-optout.png": "clear",
                        "coffee-small.jpg": "blocked", "horse-iptc.png": "blocked",
                        "camera-tdm.png": "blocked", "motorcycle.jpg": "clear"}
    with session_factory() as session:
        summary = build_eu_summary(session, [clearance.get_job(session, result.job_id)])
        # Verdicts are keyed by item key, URL and sha256.
        by_url = clearance.find_items(session, result.job_id, "https://photos.example.org/h")
        assert [(i.item_key, i.verdict) for i in by_url] == [("train/horse-iptc.png", "blocked")]
        sha = hashlib.sha256((folder / "motorcycle.jpg").read_bytes()).hexdigest()
        assert [i.verdict for i in clearance.find_items(session, result.job_id, sha)] == ["clear"]
        assert clearance.get_item(session, result.job_id, "https://img.example.org/c").verdict == (
            "blocked")
    items = {i["key"]: i for i in result.report["items"]}
    assert items["train/astronaut-small.jpg"]["url"] == "https://www.studio.example/a"

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(summary)

    assert summary["trainingItems"] == 3
    s1, s2, s3 = summary["section1"], summary["section2"], summary["section3"]
    assert s1["models"] == ["lumen-vision-2"]
    assert s1["modalities"] == {"image": {"items": 3, "sizeBand": "< 1M images"}}
    assert {(c["format"], c["items"]) for c in s1["contentTypes"]} == {("JPEG", 2), ("PNG", 1)}
    assert s2["publicDatasets"]["submittedDatasets"][0]["name"] == "hf"
    assert s2["privateData"]["licensedFromRightsholders"] == [{
        "rightsholder": scenario.HOLDER, "items": 2,
        "licences": [{"licence": "harbor-lumen-training", "items": 2}]}]
    assert s2["crawledData"]["itemsWithKnownUrl"] == 3
    assert s2["crawledData"]["topDomains"] == [{"domain": "studio.example", "items": 2},
                                               {"domain": "cdn.studio.example", "items": 1}]
    by_signal = {row["signal"]: row for row in s3["tdmOptOut"]["bySignal"]}
    assert by_signal["iptc-plus"] == {"signal": "iptc-plus", "itemsReserving": 2,
                                      "notAllowed": 2, "constrained": 0, "excluded": 1,
                                      "licensed": 1}
    assert by_signal["tdmrep"]["itemsReserving"] == 1 and by_signal["tdmrep"]["excluded"] == 1
    assert by_signal["c2pa"]["itemsReserving"] == 0
    assert s3["tdmOptOut"]["itemsExcludedForOptOut"] == 2
    assert {c["signal"] for c in s3["tdmOptOut"]["signalsChecked"]} == {
        "tdmrep", "iptc-plus", "c2pa"}
    for field in summary["providerFields"]:
        value: object = summary
        for part in field.split("."):
            value = value[part]  # type: ignore[index]
        assert value is None, field
    assert str(tmp_path) not in json.dumps(summary)

    text = render_markdown(summary)
    assert "## 3. Data processing aspects" in text
    assert f"- {scenario.HOLDER}: 2 item(s); licences: harbor-lumen-training (2)" in text

    # A wrong summary fails the schema (the test can fail).
    broken = dict(summary, trainingItems=-1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_a_job_with_items_awaiting_review_has_no_summary_yet(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    sc = scenario.build(tmp_path, session_factory, store)
    limited = tmp_path / "limited"
    (sc.dataset / "limited").rename(limited)
    result = clearance.clear_dataset(
        session_factory, limited, use="ai_training", licensee=scenario.LICENSEE, owner="ml",
        policies=load_policies(sc.policies), database_url=db_url, index_dir=tmp_path / "index")
    with session_factory() as session, pytest.raises(Conflict, match="awaiting legal review"):
        build_eu_summary(session, [clearance.get_job(session, result.job_id)])
