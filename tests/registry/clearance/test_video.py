"""Video items are sampled into frames and matched like images: the match carries a time code."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.policy import load_policies
from tests.photos import skimage_photo
from tests.registry.clearance import scenario
from tests.registry.fingerprint.helpers import make_video


def test_a_video_showing_a_denied_asset_is_blocked_with_its_time_code(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    ids = scenario.import_catalog(session_factory, store)
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "with-coffee.mp4").write_bytes(
        make_video([skimage_photo("horse.png"), skimage_photo("coffee.png")]))
    (folder / "unrelated.mp4").write_bytes(
        make_video([skimage_photo("motorcycle_left.png")], seconds_each=1.0))
    result = clearance.clear_dataset(
        session_factory, folder, use="ai_training", licensee=scenario.LICENSEE, owner="ml",
        policies=load_policies(scenario.write_policies(tmp_path / "policies")),
        database_url=db_url, index_dir=tmp_path / "index")
    items = {item["key"]: item for item in result.report["items"]}
    assert items["unrelated.mp4"]["verdict"] == "clear"
    blocked = items["with-coffee.mp4"]
    assert blocked["verdict"] == "blocked", blocked
    match = blocked["matches"][0]
    assert match["asset_id"] == ids["coffee.png"] and match["decision"] == "denied"
    assert match["time_s"] is not None and match["time_s"] >= 1.5
