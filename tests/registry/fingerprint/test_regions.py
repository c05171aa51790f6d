"""Where the hashes look: catalog windows, trimmed borders and photo boxes on a canvas."""

from __future__ import annotations

from PIL import Image

from registry.fingerprint.regions import canvas_blocks, content_box, photo_boxes, windows
from tests.photos import skimage_photo
from tests.registry.fingerprint.transforms import letterbox, screenshot


def test_catalog_windows_are_two_3x3_grids_inside_the_image() -> None:
    boxes = windows(451, 300)
    assert len(boxes) == 18
    assert dict(boxes)["w80/4"] == (45, 30, 361, 240)
    assert dict(boxes)["w60/0"] == (0, 0, 271, 180)
    assert all(x + w <= 451 and y + h <= 300 for _, (x, y, w, h) in boxes)


def test_letterbox_bars_are_trimmed_to_the_picture() -> None:
    photo = Image.open(skimage_photo("chelsea.png")).convert("RGB")
    padded = letterbox(photo)
    x, y, w, h = content_box(padded) or (0, 0, 0, 0)
    assert abs(w - photo.width) <= 2 and abs(h - photo.height) <= 2
    assert abs(x - (padded.width - photo.width) // 2) <= 1 and y == 0
    assert content_box(photo) is None


def test_a_photo_pasted_on_a_page_is_found_as_a_box() -> None:
    photo = Image.open(skimage_photo("coffee.png")).convert("RGB")
    page = screenshot(photo)
    boxes = photo_boxes(page)
    x, y, w, h = boxes[0]
    assert abs(w - 360) <= 4 and abs(h - 240) <= 4 and x > page.width / 3 and y > 0
    assert photo_boxes(photo) == []


def test_the_canvas_blocks_computed_once_give_the_same_boxes_and_blobs() -> None:
    # The matcher finds a query's photo boxes and its blobs (lower fill) from one pass.
    photo = Image.open(skimage_photo("coffee.png")).convert("RGB")
    art = Image.open(skimage_photo("astronaut.png")).convert("RGB").resize((160, 160))
    page = screenshot(photo)
    page.paste(art, (10, 10), Image.new("L", art.size, 255).resize((160, 160)))
    blocks = canvas_blocks(page)
    assert len(blocks) >= 2
    for fill, aspect in ((0.6, None), (0.3, 4.0)):
        assert photo_boxes(page, min_fill=fill, max_aspect=aspect, blocks=blocks) == \
            photo_boxes(page, min_fill=fill, max_aspect=aspect)
    assert canvas_blocks(photo) == []


def test_a_photo_on_a_grey_or_beige_page_is_found_as_a_box() -> None:
    # The canvas colour packs 18 bits: in int16 a mid-grey page was read as another colour.
    photo = Image.open(skimage_photo("coffee.png")).convert("RGB").resize((300, 200))
    for colour in ((128, 128, 128), (236, 222, 196), (90, 140, 200)):
        page = Image.new("RGB", (900, 700), colour)
        page.paste(photo, (420, 300))
        boxes = photo_boxes(page)
        assert boxes, colour
        x, y, w, h = boxes[0]
        assert abs(x - 420) <= 6 and abs(y - 300) <= 6 and abs(w - 300) <= 8 and abs(h - 200) <= 8
