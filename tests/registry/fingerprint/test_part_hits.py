"""A hash hit between a window of the query and a crop window of an asset decides nothing alone.

On the 10,000-asset bench catalog (bench/bench_scale.py) a Texas flag's blue field, taken for a
collage cell, met a crop window of a dark game scene at 6 PDQ bits, and a Hawaii flag's stripes
(a photo box) met a suitcase's crop window at 28 bits: two small, near-flat parts of unrelated
pictures. Such hits now only name candidates for stage 2; the whole asset in a cell or a box
(the collage and page transforms of test_recall_wild) still decides on its hash.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.fingerprint import Matcher
from registry.fingerprint.stages.base import Window
from registry.fingerprint.stages.hashes import HashIndex
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import add_photo

# (query window, what the matcher reports where the asset's stored hash is whole / a crop)
CASES = [
    ("tile", "collage", "crop+collage"),
    ("box", "embedded", "crop+embedded"),
    ("blob", "embedded", "crop+embedded"),
    ("full", "identity", "crop"),
    ("trim", "padding", "crop+padding"),
]


def test_only_a_query_window_against_an_asset_crop_window_is_a_part_hit(
    session: Session, store: BlobStore, home: Path
) -> None:
    add_photo(session, store, skimage_photo("coffee.png"))
    session.commit()
    matcher = Matcher.load(session, index_dir=home / "index")
    index = matcher._indexes["hash.pdq"]
    assert isinstance(index, HashIndex)
    segment = index.segments[0]
    whole = next(r for r, name in enumerate(segment.region_names) if name == "full/identity")
    crop = next(r for r, name in enumerate(segment.region_names) if name.startswith("w"))
    rows = {kind: int((segment.regions == r).nonzero()[0][0])
            for kind, r in (("whole", whole), ("crop", crop))}
    cell = Image.new("RGB", (64, 64))
    for label, of_whole, of_crop in CASES:
        window = Window(label, (0, 0, 64, 64), cell)
        hit = index._match(segment, rows["whole"], 6, window, "identity", (1.0, 1.0))
        assert (hit.transform, hit.part_against_part) == (of_whole, False), label
        hit = index._match(segment, rows["crop"], 6, window, "identity", (1.0, 1.0))
        assert hit.transform == of_crop, label
        assert hit.part_against_part is (label in ("tile", "box", "blob")), label
