"""Art with transparency is fingerprinted by what is visible (issue 11), on real Wesnoth
portraits (RGBA). The recall over backgrounds is in test_recall_wild.py (`paste_over`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.fingerprint import Matcher
from registry.fingerprint.features import (
    NEUTRAL_RGB,
    media_features,
    visible_content,
)
from registry.fingerprint.keypoints import KEYPOINT_VERSION
from tests.art import CATALOG_PORTRAITS, portrait, require_art
from tests.registry.fingerprint.helpers import add_photo


@pytest.fixture(scope="module")
def art() -> Image.Image:
    require_art()
    image = Image.open(portrait(CATALOG_PORTRAITS[0]))
    image.load()
    return image.convert("RGBA")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _hidden_colours_replaced(image: Image.Image, seed: int) -> Image.Image:
    """The same visible art with other (random) colour values under its transparent pixels."""
    pixels = np.asarray(image).copy()
    hidden = pixels[..., 3] == 0
    noise = np.random.default_rng(seed).integers(0, 256, (int(hidden.sum()), 3), np.uint8)
    pixels[hidden, :3] = noise
    return Image.fromarray(pixels, "RGBA")


def test_colours_hidden_under_transparent_pixels_change_no_fingerprint(art: Image.Image) -> None:
    assert (np.asarray(art)[..., 3] == 0).mean() > 0.3  # real art, mostly transparent
    a = media_features(_png(art), name="a.png", kind="image")
    b = media_features(_png(_hidden_colours_replaced(art, 1)), name="b.png", kind="image")
    assert len(a.hashes) == len(b.hashes) >= 34
    assert [(h.region, h.bits) for h in a.hashes] == [(h.region, h.bits) for h in b.hashes]
    ka, kb = a.keypoint_sets[0].keys, b.keypoint_sets[0].keys
    assert a.keypoint_sets[0].version == KEYPOINT_VERSION
    assert len(ka.sift) >= 100 and np.array_equal(ka.sift.descriptors, kb.sift.descriptors)
    assert np.array_equal(ka.orb.descriptors, kb.orb.descriptors)


def test_keypoints_of_art_lie_inside_its_visible_content(art: Image.Image) -> None:
    features = media_features(_png(art), name="a.png", kind="image")
    keys = features.keypoint_sets[0].keys
    alpha = np.asarray(art.getchannel("A"))
    for found in (keys.sift, keys.orb):
        x = np.clip(found.xy[:, 0].round().astype(int), 0, art.width - 1)
        y = np.clip(found.xy[:, 1].round().astype(int), 0, art.height - 1)
        assert len(found) >= 50
        assert (alpha[y, x] > 0).mean() >= 0.99
    mirror = keys.orb_mirror
    x = np.clip((art.width - 1 - mirror.xy[:, 0]).round().astype(int), 0, art.width - 1)
    y = np.clip(mirror.xy[:, 1].round().astype(int), 0, art.height - 1)
    assert (alpha[y, x] > 0).mean() >= 0.99


def test_visible_content_is_the_art_on_neutral_grey_and_opaque_pictures_pass_through(
    art: Image.Image,
) -> None:
    rgb, mask = visible_content(art)
    assert rgb.mode == "RGB" and mask is not None
    alpha = np.asarray(art.getchannel("A"))
    assert tuple(np.asarray(rgb)[alpha == 0][0]) == NEUTRAL_RGB
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    opaque = art.convert("RGB")
    same, none = visible_content(opaque)
    assert none is None and same.tobytes() == opaque.tobytes()
    fully = art.copy()
    fully.putalpha(255)
    assert visible_content(fully)[1] is None


def test_a_query_file_with_transparency_is_matched_by_its_visible_art(
    art: Image.Image, session: Session, store: BlobStore, tmp_path: Path
) -> None:
    asset = add_photo(session, store, portrait(CATALOG_PORTRAITS[0]))
    session.commit()
    matcher = Matcher.load(session, index_dir=tmp_path / "index")
    query = _png(_hidden_colours_replaced(art, 2))
    result = matcher.match_file(query, name="repost.png")
    assert result.error is None and result.matches
    best = result.matches[0]
    assert best.asset_id == asset.id and best.signal == "pdq" and best.distance == 0
