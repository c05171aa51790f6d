"""The local stage writes a segment's keypoint arrays to their files as it reads the rows: its
memory does not grow with the segment (a 90,000-asset segment is about 10 GB of arrays), and the
files hold exactly the rows' keypoints."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.fingerprint import keypoints
from registry.fingerprint.keypoints import LocalFeatures
from registry.fingerprint.models import KeypointSet as KeypointRow
from registry.fingerprint.stages import binary, local
from registry.fingerprint.stages.base import AssetTable
from tests.photos import photo_paths
from tests.registry.fingerprint.helpers import add_photo
from tests.registry.fingerprint.transforms import crop_60, rotate_5


def test_a_segment_is_written_row_by_row_and_holds_every_keypoint(
    session: Session, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in photo_paths()[:12]:
        add_photo(session, store, path)
    session.commit()
    rows = [LocalFeatures.from_bytes(bytes(d)) for d in session.scalars(
        select(KeypointRow.data).order_by(KeypointRow.id))]
    assert len(rows) >= 10
    stage = local.LocalStage()
    _, upto = stage.rows(session)
    monkeypatch.setattr(local, "_ROWS_PER_BATCH", 1)  # the database hands over one row at a time
    folder = tmp_path / "segment"
    folder.mkdir()
    tracemalloc.start()
    try:
        written = stage.build_segment(session, folder, after=0, upto=upto)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == len(rows)

    segment = local._Segment(folder)
    sift_d = np.concatenate([f.sift.descriptors for f in rows])
    orb_d = np.concatenate([k.descriptors for f in rows for k in (f.orb, f.orb_mirror)])
    assert np.array_equal(segment.sift_d, sift_d) and np.array_equal(segment.orb_d, orb_d)
    assert np.array_equal(segment.sift_xy, np.concatenate([f.sift.xy for f in rows]))
    assert np.array_equal(segment.orb_xy, np.concatenate(
        [k.xy for f in rows for k in (f.orb, f.orb_mirror)]))
    assert segment.index.ntotal == len(orb_d) and len(segment.owner) == len(orb_d)
    last = len(segment.set_row) - 1
    assert np.array_equal(segment.orb_keys(last).descriptors, rows[-1].orb_mirror.descriptors)
    assert np.array_equal(segment.sift_keys(len(rows) - 1).descriptors, rows[-1].sift.descriptors)

    arrays = sum(a.nbytes for a in (sift_d, orb_d)) + sum(
        k.xy.nbytes for f in rows for k in (f.sift, f.orb, f.orb_mirror))
    # Collected in lists and then concatenated, the arrays took 2.7 times their size here; written
    # as they come, 0.54 times (the few rows in hand, the index's own codes).
    assert peak < arrays, (peak, arrays)


def test_an_empty_segment_loads(tmp_path: Path, session: Session) -> None:
    stage = local.LocalStage()
    stage.build_segment(session, tmp_path, after=0, upto=0)
    segment = local._Segment(tmp_path)
    assert segment.index.ntotal == 0 and segment.sift_d.shape == (0, 128)
    assert segment.orb_xy.shape == (0, 2) and segment.owner.shape == (0,)


def test_a_large_segment_keeps_its_centroids_in_a_tree_and_still_finds_the_asset(
    session: Session, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above `ORB_TREE_ABOVE_CODES` the ORB index's centroids sit in a vocabulary tree with
    small lists, several scanned; here every segment is made that large (the thresholds
    lowered), so that the real photos' ORB codes go through the tree's coarse step."""
    paths = photo_paths()[:10]
    assets = [add_photo(session, store, p) for p in paths]
    session.commit()
    monkeypatch.setattr(local, "ORB_TREE_ABOVE_CODES", 1)
    monkeypatch.setattr(local, "ORB_TREE_CODES_PER_LIST", 8)
    monkeypatch.setattr(binary, "FLAT_MAX_CODES", 0)
    stage = local.LocalStage()
    _, upto = stage.rows(session)
    stage.build_segment(session, tmp_path, after=0, upto=upto)
    segment = local._Segment(tmp_path)
    assert binary.coarse_tree(segment.index) and segment.index.nprobe == local.ORB_TREE_PROBES
    assert segment.index.nlist >= 256
    index = local._LocalIndex([segment], AssetTable(np.array([a.id for a in assets]),
                                                    np.array([bytes.fromhex(a.sha256)
                                                              for a in assets], "S32")))
    for path, asset in zip(paths[:4], assets[:4], strict=True):
        query = keypoints.extract_orb(rotate_5(crop_60(Image.open(path).convert("RGB"))),
                                      query=True)
        best = index.candidates(query)[0]
        assert int(segment.row_asset[int(segment.set_row[best.set_no])]) == asset.id, path


def test_votes_that_agree_on_where_the_asset_lies_are_counted_and_scattered_ones_are_not() -> None:
    """The shortlist's rank (`local.consistent_votes`): a copy's vote pairs follow one
    similarity (here rotated 12 degrees, scaled 1.7 and shifted), chance votes land anywhere."""
    rng = np.random.default_rng(7)
    asset = rng.uniform(0, 512, (40, 2)).astype(np.float32)
    angle, scale = np.radians(12), 1.7
    turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    copied = asset[:14] @ turn.T + np.array([90.0, 40.0]) + rng.normal(0, 1.5, (14, 2))
    scattered = rng.uniform(0, 1024, (26, 2))
    query = np.vstack([copied, scattered]).astype(np.float32)
    assert 14 <= local.consistent_votes(asset, query) <= 16
    assert local.consistent_votes(asset[14:], query[14:]) <= 4
    assert local.consistent_votes(asset[:2], query[:2]) == 2  # any two pairs fit one
