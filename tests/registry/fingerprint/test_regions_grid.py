"""Collage cells (regions.grid_cells) on real pictures: a 3x3 collage of real photos and art is
cut into its nine cells; a real photo and a real portrait are not collages."""

from __future__ import annotations

from PIL import Image

from registry.fingerprint.regions import grid_cells
from tests.photos import photo_paths
from tests.registry.fingerprint.transforms_wild import collage, open_picture, rng_for


def test_a_collage_is_cut_into_its_cells_and_a_photo_is_not_a_collage() -> None:
    photos = photo_paths()
    make = collage(photos[1:12])
    rng = rng_for("grid", "astronaut")
    query = make(open_picture(photos[0]), rng)
    cells = grid_cells(query.resize((512, 512)))
    assert len(cells) in (4, 9)
    side = 512 / (2 if len(cells) == 4 else 3)
    assert all(abs(w - side) < 12 and abs(h - side) < 12 for _, _, w, h in cells)
    for path in photos[:12]:
        assert grid_cells(open_picture(path).convert("RGB")) == [], path.name
    assert grid_cells(Image.new("RGB", (300, 200), (255, 255, 255))) == []
