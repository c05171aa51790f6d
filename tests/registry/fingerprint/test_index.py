"""The staged index: segments appended as the catalog grows, rebuilt only when rows vanish, and
the one exact lookup (`find_in_catalog`) the clearance runner and the API share."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.catalog.models import Asset
from registry.fingerprint import Matcher, find_in_catalog, index, index_status, is_fresh, sync_index
from registry.fingerprint.index import read_manifest, segments_of
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import add_photo
from tests.registry.fingerprint.transforms import crop_60


def test_new_assets_append_a_segment_and_a_running_matcher_picks_them_up(
    session: Session, store: BlobStore, home: Path
) -> None:
    index_dir = home / "index"
    first = add_photo(session, store, skimage_photo("coffee.png"))
    session.commit()
    matcher = Matcher.load(session, index_dir=index_dir)
    before = read_manifest(index_dir)
    assert before is not None and is_fresh(session, index_dir)
    later = add_photo(session, store, skimage_photo("chelsea.png"))
    session.commit()
    assert not is_fresh(session, index_dir)
    query = crop_60(Image.open(skimage_photo("chelsea.png")).convert("RGB"))
    assert matcher.match_image(query) == []  # not yet refreshed
    assert matcher.refresh(session, force=True)
    assert [m.asset_id for m in matcher.match_image(query)][:1] == [later.id]
    after = read_manifest(index_dir)
    assert after is not None
    for stage in ("exact", "hash.pdq", "hash.phash", "local"):
        old, new = segments_of(before, stage), segments_of(after, stage)
        assert new[: len(old)] == old and len(new) == len(old) + 1  # appended, not rebuilt
    status = index_status(session, index_dir)
    assert status["fresh"] and status["stages"]["exact"]["indexed"] == 2
    assert first.id != later.id


def test_a_larger_append_absorbs_the_smaller_segments_before_it(
    session: Session, store: BlobStore, home: Path
) -> None:
    """Segment sizes never grow along the list: a first segment of one asset is merged into the
    two appended after it (one probe per stage instead of two), and a later, smaller append
    is a segment of its own again; every asset is still found."""
    index_dir = home / "index"
    photos = [skimage_photo(n) for n in ("coffee.png", "chelsea.png", "astronaut.png",
                                         "rocket.jpg")]
    first = add_photo(session, store, photos[0])
    session.commit()
    one = sync_index(session, index_dir)
    assets = [first, *(add_photo(session, store, p) for p in photos[1:3])]
    session.commit()
    merged = sync_index(session, index_dir)
    for stage in ("exact", "hash.pdq", "hash.phash", "local"):
        (only,) = segments_of(merged, stage)  # one segment: the first was absorbed
        assert only.after == 0 and only.rows > segments_of(one, stage)[0].rows
    assets.append(add_photo(session, store, photos[3]))
    session.commit()
    grown = sync_index(session, index_dir)
    for stage in ("exact", "local"):  # one asset after three: appended, the three kept
        assert segments_of(grown, stage)[:1] == segments_of(merged, stage)
        assert len(segments_of(grown, stage)) == 2
    for stage in ("exact", "hash.pdq", "hash.phash", "local"):  # gone once no manifest names it
        assert not (index_dir / segments_of(one, stage)[0].dir).exists()
    matcher = Matcher.open(index_dir)
    for photo, asset in zip(photos, assets, strict=True):
        query = crop_60(Image.open(photo).convert("RGB"))
        assert [m.asset_id for m in matcher.match_image(query)][:1] == [asset.id], photo.name


def test_an_index_from_before_the_merge_rule_is_put_in_order_by_the_next_sync(
    session: Session, store: BlobStore, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = home / "index"
    add_photo(session, store, skimage_photo("coffee.png"))
    session.commit()
    sync_index(session, index_dir)
    for name in ("chelsea.png", "astronaut.png"):
        add_photo(session, store, skimage_photo(name))
    session.commit()
    with monkeypatch.context() as patched:  # the old rule: append, whatever the sizes
        patched.setattr(index, "_kept", lambda held, new_rows: held)
        unordered = sync_index(session, index_dir)
    assert len(segments_of(unordered, "local")) == 2
    ordered = sync_index(session, index_dir)  # nothing new, but a small first segment
    assert ordered["serial"] == unordered["serial"] + 1
    for stage in ("exact", "hash.pdq", "hash.phash", "local"):
        (only,) = segments_of(ordered, stage)
        assert only.after == 0 and only.rows == sum(s.rows for s in segments_of(unordered, stage))
    assert sync_index(session, index_dir)["serial"] == ordered["serial"]  # then at rest


def test_a_deleted_asset_rebuilds_its_stages_and_leaves_the_index(
    session: Session, store: BlobStore, home: Path
) -> None:
    index_dir = home / "index"
    gone = add_photo(session, store, skimage_photo("coffee.png"))
    add_photo(session, store, skimage_photo("chelsea.png"))
    session.commit()
    sync_index(session, index_dir)
    session.execute(delete(Asset).where(Asset.id == gone.id))
    session.commit()
    manifest = sync_index(session, index_dir)
    assert all(len(segments_of(manifest, s)) == 1 for s in manifest["stages"])
    matcher = Matcher.open(index_dir)
    assert matcher.asset_count == 1
    assert matcher.match_image(Image.open(skimage_photo("coffee.png")).convert("RGB")) == []


def test_find_in_catalog_and_stage_0_agree_on_exact_copies(
    session: Session, store: BlobStore, home: Path
) -> None:
    asset = add_photo(session, store, skimage_photo("coffee.png"))
    session.commit()
    hits = find_in_catalog(session, [asset.sha256, "0" * 64, ""])
    assert list(hits) == [asset.sha256] and hits[asset.sha256].asset_id == asset.id
    matcher = Matcher.load(session, index_dir=home / "index")
    result = matcher.match_file(skimage_photo("coffee.png"), name="coffee.png")
    assert result.matches[0].signal == "sha256" and result.matches[0].asset_id == asset.id
    assert result.matches[0].transform == "identical"
