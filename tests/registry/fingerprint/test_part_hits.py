"""A hash hit between a window of the query and a crop window of an asset decides nothing alone.

On the 10,000-asset bench catalog (bench/bench_scale.py) a Texas flag's blue field, taken for a
collage cell, met a crop window of a dark game scene at 6 PDQ bits, and a Hawaii flag's stripes
(a photo box) met a suitcase's crop window at 28 bits: two small, near-flat parts of unrelated
pictures. Such hits now only name candidates for stage 2; the whole asset in a cell or a box
(the collage and page transforms of test_recall_wild) still decides on its hash.
"""

from __future__ import annotations

import pytest

from registry.fingerprint.matcher import _part_against_part
from registry.fingerprint.stages.base import Match


def _hit(transform: str) -> Match:
    return Match(1, "ab" * 32, "pdq", 6, 0.9, (0, 0, 10, 10), None, transform)


@pytest.mark.parametrize(("transform", "part"), [
    ("crop+collage", True),
    ("crop+embedded", True),
    ("crop+flip_h+embedded", True),
    ("collage", False),  # the whole asset as a collage cell
    ("embedded", False),  # the whole asset in a photo box
    ("flip_h+embedded", False),
    ("crop", False),  # the whole query against a crop window of the asset
    ("crop+padding", False),  # the query without its borders against a crop window
    ("identity", False),
])
def test_only_a_query_window_against_an_asset_crop_window_is_a_part_hit(
        transform: str, part: bool) -> None:
    assert _part_against_part(_hit(transform)) is part
