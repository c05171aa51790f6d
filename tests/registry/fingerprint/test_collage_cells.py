"""A collage may hold several catalog pictures: a confident match on one cell must not stop the
search of the others (found on the 1,000-asset bench catalog used as fillers: a collage cell that
was a catalog picture hid the target cell, collage recall 0.92 -> 0.54)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from registry.fingerprint import Matcher
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import photo_catalog
from tests.registry.fingerprint.transforms_wild import rotate_cut


def _collage(left: Image.Image, right: Image.Image, tile: int = 300, gap: int = 8) -> Image.Image:
    canvas = Image.new("RGB", (2 * tile + 3 * gap, tile + 2 * gap), (255, 255, 255))
    for col, picture in enumerate((left, right)):
        canvas.paste(picture.convert("RGB").resize((tile, tile)), (gap + col * (tile + gap), gap))
    return canvas


def test_every_catalog_picture_of_a_collage_is_found(tmp_path: Path) -> None:
    coffee, chelsea = skimage_photo("coffee.png"), skimage_photo("chelsea.png")
    ids, state = photo_catalog(tmp_path, [coffee, chelsea])
    matcher: Matcher = pickle.loads(state)
    turned = rotate_cut(Image.open(chelsea), np.random.default_rng(3))
    found = matcher.match_image(_collage(Image.open(coffee), turned))
    by_asset = {m.asset_id: m for m in found}
    # The copy of coffee is found by its hash; the turned chelsea only by stage 2 on its cell.
    assert by_asset[ids[coffee]].signal == "pdq"
    assert ids[chelsea] in by_asset, found
    assert by_asset[ids[chelsea]].signal in ("orb", "sift")
    assert "+collage" in (by_asset[ids[chelsea]].transform or "")
