"""A match says what it is (issue 11): `copy`, `derivative` or `similar`, on real pictures.

Derivatives are real: Wesnoth's `fire_ant` portrait is a recoloured `giant_ant` (tests/art.py
lists such variant families). `similar` is a PDQ hit near its threshold that stage 2 cannot
verify: a 32 px JPEG thumbnail of a photo (too small for any keypoint).
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.fingerprint import Matcher, MatchKind
from registry.fingerprint.matcher import prepare
from registry.fingerprint.stages import local
from registry.fingerprint.stages.base import Match
from tests.art import portrait, require_art
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import add_photo
from tests.registry.fingerprint.transforms_wild import open_picture, posterize_edges, rng_for


def thumbnail(path: Path, side: int = 32, quality: int = 40) -> Image.Image:
    """A tiny JPEG thumbnail (a dataset's preview): its PDQ hash lands near the threshold."""
    image = open_picture(path).convert("RGB")
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    out.seek(0)
    return Image.open(out).convert("RGB")


@pytest.fixture
def matcher(session: Session, store: BlobStore, tmp_path: Path) -> tuple[Matcher, dict[str, int]]:
    require_art()
    ids = {"giant_ant": add_photo(session, store, portrait("monsters/giant_ant")).id,
           "coffee": add_photo(session, store, skimage_photo("coffee.png")).id,
           "chelsea": add_photo(session, store, skimage_photo("chelsea.png")).id}
    session.commit()
    return Matcher.load(session, index_dir=tmp_path / "index"), ids


def test_a_recoloured_variant_of_the_art_is_a_derivative_and_the_art_itself_a_copy(
    matcher: tuple[Matcher, dict[str, int]],
) -> None:
    m, ids = matcher
    variant = m.match_file(portrait("monsters/fire_ant"), name="fire_ant.png")
    assert [(x.asset_id, x.kind) for x in variant.matches] == [
        (ids["giant_ant"], MatchKind.derivative)]
    assert variant.matches[0].signal in ("orb", "sift")
    same = m.match_file(portrait("monsters/giant_ant"), name="giant_ant.png")
    assert [(x.asset_id, x.kind) for x in same.matches] == [(ids["giant_ant"], MatchKind.copy)]


def test_a_turned_crop_verified_by_keypoints_is_a_copy_with_its_outline(
    matcher: tuple[Matcher, dict[str, int]],
) -> None:
    m, ids = matcher
    query = open_picture(skimage_photo("chelsea.png")).rotate(12)
    found = m.match_image(query)
    assert [(x.asset_id, x.kind) for x in found] == [(ids["chelsea"], MatchKind.copy)]
    assert found[0].signal in ("orb", "sift") and found[0].outline is not None
    # The asset's outline, turned 12 degrees, reaches past the query's corners (a partial view).
    xs = found[0].outline[0::2]
    assert min(xs) < 0 < query.width < max(xs)


def test_a_hash_near_its_threshold_that_no_stage_verifies_is_only_similar(
    matcher: tuple[Matcher, dict[str, int]],
) -> None:
    m, ids = matcher
    found = m.match_image(thumbnail(skimage_photo("coffee.png")))
    assert [(x.asset_id, x.kind, x.signal) for x in found] == [
        (ids["coffee"], MatchKind.similar, "pdq")]
    assert 31 - 7 < found[0].distance <= 31 and found[0].confidence <= 0.5
    assert found[0].as_dict()["kind"] == "similar"


def test_the_whole_picture_hashes_of_an_asset_come_back_from_every_index_kind() -> None:
    import faiss
    import numpy as np

    from registry.fingerprint.stages.hashes import _code_of

    codes = np.random.default_rng(0).integers(0, 256, (30_000, 32), dtype=np.uint8)
    flat = faiss.IndexBinaryFlat(256)
    multi = faiss.IndexBinaryMultiHash(256, 10, 24)
    ivf = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(256), 256, 16)
    ivf.train(codes[:2000])
    for index in (flat, multi, ivf):
        index.add(codes)
        assert _code_of(index, 12_345) == codes[12_345].tobytes()


@pytest.fixture
def photos(session: Session, store: BlobStore, tmp_path: Path) -> tuple[Matcher, dict[str, int]]:
    names = ("rocket.jpg", "coins.png", "coffee.png", "chelsea.png")
    ids = {n: add_photo(session, store, skimage_photo(n)).id for n in names}
    session.commit()
    return Matcher.load(session, index_dir=tmp_path / "index"), ids


@pytest.mark.parametrize("name", ["rocket.jpg", "coins.png"])
def test_a_posterized_edge_enhanced_copy_found_by_a_weak_fit_and_its_hash_is_a_derivative(
    photos: tuple[Matcher, dict[str, int]], name: str
) -> None:
    """Posterized to 3 bits and edge-enhanced, these photos keep 10-13 ORB inliers (below
    ORB_ACCEPT_INLIERS), SIFT finds none, and PDQ puts them 32-50 bits away (above its
    threshold): neither signal alone may call it, both together do, as a derivative."""
    m, ids = photos
    query = posterize_edges(open_picture(skimage_photo(name)), rng_for("posterize_edges", name))
    found = m.match_image(query)
    assert [(x.asset_id, x.kind, x.signal) for x in found] == [
        (ids[name], MatchKind.derivative, "orb")]
    assert found[0].inliers is not None and found[0].inliers < local.ORB_ACCEPT_INLIERS


def test_a_weak_fit_whose_hash_disagrees_is_dropped(
    photos: tuple[Matcher, dict[str, int]]
) -> None:
    m, ids = photos
    query = posterize_edges(open_picture(skimage_photo("rocket.jpg")),
                            rng_for("posterize_edges", "rocket.jpg"))
    probe = prepare(query)
    weak = Match(ids["coins.png"], "0" * 64, "orb", 0.5, 0.3, (0, 0, *query.size),
                 inliers=12, weak_geometry=True)
    assert m._judge(probe, weak) is None  # coins' hash is far from the rocket's picture
    right = replace(weak, asset_id=ids["rocket.jpg"])
    assert m._judge(probe, right) == replace(right, kind=MatchKind.derivative)
    assert m._judge(probe, replace(weak, weak_geometry=False)) == weak  # a firm fit stays
