"""pHash hints are checked against PDQ before stage 2 spends a SIFT extraction on them
(`matcher.HINT_MAX_GATE_BITS`): on real photos and real art with transparency, a turned, resized
or recompressed copy keeps its hint, an unrelated picture does not, and a flat picture (no
usable PDQ hash) keeps it."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from registry.fingerprint import Matcher
from registry.fingerprint.matcher import HINT_MAX_GATE_BITS, prepare
from registry.fingerprint.stages.hashes import HashIndex
from tests.art import portrait, require_art
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import photo_catalog

CATALOG = ["astronaut.png", "coffee.png", "chelsea.png", "brick.png"]
UNRELATED = ["retina.jpg", "moon.png", "rocket.jpg", "motorcycle_left.png"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[Path, int], Matcher]:
    require_art()
    paths = [skimage_photo(n) for n in CATALOG] + [portrait("trolls/troll-shaman")]
    ids, state = photo_catalog(tmp_path_factory.mktemp("hints"), paths)
    return ids, pickle.loads(state)


def _pdq(matcher: Matcher) -> HashIndex:
    return next(i for i in matcher._indexes.values()
                if isinstance(i, HashIndex) and i.signal.gates_query)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def test_copies_keep_their_hint(catalog: tuple[dict[Path, int], Matcher]) -> None:
    ids, matcher = catalog
    for path, asset_id in ids.items():
        with Image.open(path) as im:
            picture = im.convert("RGBA") if "A" in im.getbands() else im.convert("RGB")
        half = picture.resize((picture.width // 2, picture.height // 2))
        # Art keeps its transparency (a JPEG would show whatever colours hide under it).
        for label, query in {"mirror": ImageOps.mirror(picture),
                             "rot90": picture.rotate(90, expand=True),
                             "half": half if picture.mode == "RGBA" else _jpeg(half, 40),
                             }.items():
            probe = prepare(query)
            distance = _pdq(matcher).nearest_whole(probe, asset_id)
            assert distance is not None and distance <= HINT_MAX_GATE_BITS, (path.name, label)
            assert matcher._plausible_hint(probe, asset_id), (path.name, label)


def test_unrelated_pictures_lose_their_hint(catalog: tuple[dict[Path, int], Matcher]) -> None:
    ids, matcher = catalog
    for name in UNRELATED:
        with Image.open(skimage_photo(name)) as im:
            probe = prepare(im.convert("RGB"))
        for path, asset_id in ids.items():
            distance = _pdq(matcher).nearest_whole(probe, asset_id)
            assert distance is not None and distance > HINT_MAX_GATE_BITS, (name, path.name)
            assert not matcher._plausible_hint(probe, asset_id), (name, path.name)


def test_a_flat_query_keeps_its_hint(catalog: tuple[dict[Path, int], Matcher]) -> None:
    ids, matcher = catalog
    probe = prepare(Image.new("RGB", (640, 480), (90, 120, 150)))
    for asset_id in ids.values():
        assert _pdq(matcher).nearest_whole(probe, asset_id) is None
        assert matcher._plausible_hint(probe, asset_id)


def test_an_assets_rows_are_found_by_binary_search(
        catalog: tuple[dict[Path, int], Matcher]) -> None:
    ids, matcher = catalog
    for segment in _pdq(matcher).segments:
        for asset_id in [*ids.values(), 10**9]:
            expected = np.flatnonzero(segment.asset_ids == asset_id)
            assert (segment.rows_of(asset_id) == expected).all()
            assert len(expected) or asset_id == 10**9
