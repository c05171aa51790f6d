"""Fingerprinting services and the Matcher on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import functools
import io
import pickle
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from registry.catalog import BlobStore, ImportOptions, import_file, register_asset
from registry.catalog.models import Asset
from registry.fingerprint import (
    Matcher,
    fingerprint_new_asset,
    is_fresh,
    match_paths,
    rebuild_fingerprints,
    weak_assets,
)
from registry.fingerprint.models import Fingerprint, KeypointSet
from tests.factories import BAD_FILES, bad_file, bomb_png, make_rightsholder
from tests.photos import SHARED_FIXTURES, skimage_photo
from tests.registry.fingerprint.helpers import add_photo, make_video
from tests.registry.fingerprint.transforms import crop_60, crop_80, screenshot


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_import_stores_hashes_of_every_region_and_keypoints(
    session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    result = import_file(session_factory, store, skimage_photo("chelsea.png"),
                         ImportOptions(rightsholder="Northwind Games"), fingerprint_new_asset)
    assert result.status == "created"
    with session_factory() as session:
        rows = session.scalars(select(Fingerprint).where(
            Fingerprint.asset_id == result.asset_id)).all()
        regions = {(r.signal, r.region) for r in rows}
        assert len([r for r in rows if r.signal == "pdq"]) == 8 + 18
        assert len([r for r in rows if r.signal == "phash"]) == 8
        assert ("pdq", "full/rot90") in regions and ("pdq", "w60/4") in regions
        assert all(len(r.hash) * 8 == (256 if r.signal == "pdq" else 64) for r in rows)
        centre = next(r for r in rows if r.region == "w80/4")
        assert (centre.w, centre.h) == (round(451 * 0.8), round(300 * 0.8))
        keys = session.scalars(select(KeypointSet)).all()
        assert len(keys) == 1 and keys[0].count > 200


def test_an_unhashable_file_rolls_back_its_import(
    session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    path = SHARED_FIXTURES / "pdq" / "misc-images" / "wee.jpg"
    result = import_file(session_factory, store, path,
                         ImportOptions(rightsholder="Northwind Games"), fingerprint_new_asset)
    # A 34x42 picture is still hashable: the import goes through with its hashes.
    assert result.status == "created"
    with session_factory() as session:
        assert session.scalar(select(func.count(Fingerprint.id))) > 0


def test_matcher_rebuilds_a_stale_index_when_the_catalog_grows(
    session: Session, store: BlobStore, home: Path
) -> None:
    index_dir = home / "index"
    first = add_photo(session, store, skimage_photo("astronaut.png"))
    matcher = Matcher.load(session, index_dir=index_dir)
    assert is_fresh(session, index_dir)
    coffee_image = Image.open(skimage_photo("coffee.png")).convert("RGB")
    assert matcher.match_image(crop_60(coffee_image)) == []
    coffee = add_photo(session, store, skimage_photo("coffee.png"))
    assert not is_fresh(session, index_dir)
    again = Matcher.load(session, index_dir=index_dir)
    assert again.generation != matcher.generation and again.asset_count == 2
    found = again.match_image(crop_60(coffee_image))
    assert [m.asset_id for m in found] == [coffee.id]
    assert found[0].asset_sha256 == coffee.sha256 and found[0].signal == "pdq"
    assert found[0].transform == "crop" and 0.5 < found[0].confidence <= 1
    astronaut = again.match_image(Image.open(skimage_photo("astronaut.png")))
    assert astronaut[0].asset_id == first.id and astronaut[0].distance == 0
    assert astronaut[0].region == (0, 0, 512, 512)


def test_a_picture_embedded_in_a_screenshot_reports_where_it_is(
    session: Session, store: BlobStore, home: Path
) -> None:
    asset = add_photo(session, store, skimage_photo("coffee.png"))
    matcher = Matcher.load(session, index_dir=home / "index")
    query = screenshot(Image.open(skimage_photo("coffee.png")).convert("RGB"))
    (match,) = matcher.match_image(query)
    assert match.asset_id == asset.id
    # Found as a photo box on the page (stage 1) or by keypoints (stage 2).
    assert match.transform == "embedded" or (match.inliers or 0) >= 12
    assert match.region is not None
    x, y, w, h = match.region
    assert y > 0
    # The photo was pasted at 60% size (360x240) near the right edge, below the title bar.
    assert abs(w - 360) < 20 and abs(h - 240) < 20 and x > query.width / 3


def test_rebuild_recomputes_every_asset_and_reports_progress(
    session: Session, store: BlobStore
) -> None:
    for name in ("astronaut.png", "rocket.jpg", "coffee.png", "chelsea.png"):
        add_photo(session, store, skimage_photo(name))
    before = session.scalar(select(func.count(Fingerprint.id)))
    session.execute(delete(Fingerprint))
    session.execute(delete(KeypointSet))
    seen: list[tuple[int, int]] = []
    # Four assets: enough for the process pool to be used.
    summary = rebuild_fingerprints(session, store=store, workers=2,
                                   on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert summary.assets == 4 and summary.errors == [] and summary.weak == []
    assert session.scalar(select(func.count(Fingerprint.id))) == before
    assert rebuild_fingerprints(session, store=store, only_missing=True).assets == 0


def test_rebuild_reports_a_missing_blob_and_goes_on(
    session: Session, store: BlobStore
) -> None:
    kept = add_photo(session, store, skimage_photo("astronaut.png"))
    lost = add_photo(session, store, skimage_photo("coffee.png"))
    store.path(lost.sha256).unlink()
    summary = rebuild_fingerprints(session, store=store, workers=1)
    assert summary.assets == 1 and [a for a, _ in summary.errors] == [lost.id]
    assert session.scalar(select(func.count(Fingerprint.id)).where(
        Fingerprint.asset_id == kept.id)) == 34


def test_flat_pictures_are_flagged_weak_and_never_matched(
    session: Session, store: BlobStore, home: Path
) -> None:
    flat = Image.new("RGB", (400, 300), (120, 160, 210))  # a cloudless sky
    holder = make_rightsholder(session)
    asset, _ = register_asset(session, store=store, data=_png(flat), name="sky.png",
                              rightsholder=holder)
    fingerprint_new_asset(session, asset, _png(flat))
    assert weak_assets(session) == [asset.id]
    summary = rebuild_fingerprints(session, store=store, workers=1)
    assert summary.weak == [asset.id]
    matcher = Matcher.load(session, index_dir=home / "index")
    assert matcher.match_image(Image.new("RGB", (640, 480), (118, 158, 212))) == []


def test_video_assets_and_video_queries_report_time_codes(
    session: Session, store: BlobStore, home: Path
) -> None:
    holder = make_rightsholder(session)
    clip = make_video([skimage_photo("astronaut.png"), skimage_photo("coffee.png")])
    video, _ = register_asset(session, store=store, data=clip, name="trailer.mp4",
                              rightsholder=holder)
    assert video.kind == "video"
    fingerprint_new_asset(session, video, clip)
    still = add_photo(session, store, skimage_photo("chelsea.png"))
    matcher = Matcher.load(session, index_dir=home / "index")

    frame_query = Image.open(skimage_photo("coffee.png")).convert("RGB").resize((320, 240))
    (hit,) = matcher.match_image(frame_query)
    assert hit.asset_id == video.id and hit.asset_time_s is not None
    assert 2.0 <= hit.asset_time_s < 4.0

    query = make_video([skimage_photo("rocket.jpg"), skimage_photo("chelsea.png")])
    result = matcher.match_file(query, name="upload.mp4")
    assert result.error is None
    (found,) = result.matches
    assert found.asset_id == still.id and found.time_s is not None
    assert all(2.0 <= t < 4.0 for t in found.time_codes) and found.time_codes


def test_the_matcher_pickles_for_worker_processes_and_batches_keep_order(
    session: Session, store: BlobStore, home: Path, tmp_path: Path
) -> None:
    asset = add_photo(session, store, skimage_photo("rocket.jpg"))
    matcher = Matcher.load(session, index_dir=home / "index")
    clone = pickle.loads(pickle.dumps(matcher))
    assert clone.generation == matcher.generation
    paths = []
    for i, case in enumerate(["zero_bytes", "truncated_jpeg"]):
        name, data = bad_file(case)
        paths.append(tmp_path / f"{i}-{name}")
        paths[-1].write_bytes(data)
    query = tmp_path / "rocket-crop.png"
    query.write_bytes(_png(crop_60(Image.open(skimage_photo("rocket.jpg")).convert("RGB"))))
    paths += [query, skimage_photo("coffee.png"), tmp_path / "missing.jpg"]
    results = list(match_paths(clone, paths, workers=2))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert [bool(r.error) for r in results] == [True, True, False, False, True]
    assert [m.asset_id for m in results[2].matches] == [asset.id]
    assert results[3].matches == ()


@functools.lru_cache
def _bomb(side: int) -> bytes:
    return bomb_png(side)


BAD_CASES = {  # case -> what the error must say
    "zero_bytes": "empty", "truncated_jpeg": "truncated", "text_named_png": "not a recognised",
    "svg_named_png": "not a recognised", "unknown_format_bmp": "not allowed",
    "header_bomb": "pixels", "bomb_20000px_png": "decompression bomb",
    "bomb_12000px_png": "decompression bomb",
}


def test_bad_input_gets_a_clear_per_file_error_and_the_batch_goes_on(
    session: Session, store: BlobStore, home: Path
) -> None:
    asset = add_photo(session, store, skimage_photo("astronaut.png"))
    matcher = Matcher.load(session, index_dir=home / "index")
    assert set(BAD_CASES) >= set(BAD_FILES)
    good = Image.open(skimage_photo("astronaut.png")).convert("RGB")
    for case, expected in BAD_CASES.items():
        if case.startswith("bomb_"):
            name, data = f"{case}.png", _bomb(int(case.split("_")[1].removesuffix("px")))
        else:
            name, data = bad_file(case)
        result = matcher.match_file(data, name=name)
        assert result.error is not None and result.error.startswith(name), case
        assert expected in result.error and result.matches == (), (case, result.error)
        # The next file of the batch is matched as usual.
        assert matcher.match_file(_png(good), name="ok.png").matches[0].asset_id == asset.id


def test_assets_deleted_from_the_catalog_leave_the_index(
    session: Session, store: BlobStore, home: Path
) -> None:
    gone = add_photo(session, store, skimage_photo("astronaut.png"))
    add_photo(session, store, skimage_photo("coffee.png"))
    Matcher.load(session, index_dir=home / "index")
    session.delete(session.get(Asset, gone.id))
    session.flush()
    matcher = Matcher.load(session, index_dir=home / "index")
    assert matcher.match_image(Image.open(skimage_photo("astronaut.png"))) == []


def test_a_mirrored_crop_is_found(session: Session, store: BlobStore, home: Path) -> None:
    ids = {name: add_photo(session, store, skimage_photo(name)).id
           for name in ("rocket.jpg", "motorcycle_left.png", "coffee.png")}
    matcher = Matcher.load(session, index_dir=home / "index")
    for name, asset_id in ids.items():
        photo = Image.open(skimage_photo(name)).convert("RGB")
        query = ImageOps.mirror(crop_80(photo))
        found = matcher.match_image(query)
        assert [m.asset_id for m in found] == [asset_id], name
        assert "flip_h" in (found[0].transform or "")
