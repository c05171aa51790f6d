"""Where to hash: overlapping windows of catalog assets, and the content box of a query.

Whole-image hashes fail on crops and on pictures placed inside a larger canvas (FIELD-NOTES:
recall about 0). Two cheap fixes before the keypoint stage:
- catalog side: hash 3x3 grids of windows covering 80% and 60% of each side, so that a crop of
  the asset is close to one of them;
- query side: trim uniform borders (letterbox, pillarbox, padding) and hash the content box too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]  # x, y, w, h

# (label prefix, window side as a fraction of the image side); 3x3 positions each.
WINDOW_SCALES: tuple[tuple[str, float], ...] = (("w80", 0.8), ("w60", 0.6))
GRID = 3
# A border line is uniform when its grey-level spread is below this (0-255), after JPEG noise.
FLAT_LINE_STD = 8.0
FLAT_LINE_DELTA = 12.0
# Trim only when it removes at least this fraction of the area.
MIN_TRIM_FRACTION = 0.03


def windows(width: int, height: int) -> list[tuple[str, Box]]:
    """The catalog windows: label (e.g. "w80/4" = centre 80% window) and box."""
    out: list[tuple[str, Box]] = []
    for prefix, scale in WINDOW_SCALES:
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        for row in range(GRID):
            for col in range(GRID):
                x = round((width - w) * col / (GRID - 1))
                y = round((height - h) * row / (GRID - 1))
                out.append((f"{prefix}/{row * GRID + col}", (x, y, w, h)))
    return out


def crop(image: Image.Image, box: Box) -> Image.Image:
    x, y, w, h = box
    return image.crop((x, y, x + w, y + h))


def _trim_side(lines: np.ndarray) -> int:
    """How many leading lines (rows of `lines`) are uniform and of the first line's colour."""
    if lines.shape[0] == 0:
        return 0
    ref = float(np.median(lines[0]))
    std = lines.std(axis=1)
    delta = np.abs(lines.mean(axis=1) - ref)
    flat = (std < FLAT_LINE_STD) & (delta < FLAT_LINE_DELTA)
    if not flat[0]:
        return 0
    stop = np.flatnonzero(~flat)
    return int(stop[0]) if stop.size else int(lines.shape[0])


def content_box(image: Image.Image) -> Box | None:
    """The box inside uniform borders, or None when there is nothing worth trimming."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    height, width = grey.shape
    top = _trim_side(grey)
    bottom = _trim_side(grey[::-1])
    left = _trim_side(grey.T)
    right = _trim_side(grey.T[::-1])
    w, h = width - left - right, height - top - bottom
    if w < 32 or h < 32:
        return None
    if w * h > (1 - MIN_TRIM_FRACTION) * width * height:
        return None
    return (left, top, w, h)


# Photo boxes: solid blocks that differ from the canvas colour (a picture pasted into a page).
BOX_COLOUR_DELTA = 14  # 0-255, per channel
BOX_MIN_FRACTION = 0.02  # of the canvas area
BOX_MAX_FRACTION = 0.9
BOX_MIN_FILL = 0.6  # component pixels / bounding-box pixels
MAX_BOXES = 3


@dataclass(frozen=True)
class Block:
    """A connected block of pixels unlike the canvas colour (`canvas_blocks`)."""

    box: Box  # in the image's pixels
    area: int  # its pixels, at the working scale
    width: int  # of its bounding box, at the working scale
    height: int


def canvas_blocks(image: Image.Image) -> list[Block]:
    """The blocks that stand out from a flat canvas (screenshots, collages, web pages), of a
    plausible picture's size: pixels unlike the canvas colour, thin strokes (text, rules) opened
    away, holes closed, connected components between `BOX_MIN_FRACTION` and `BOX_MAX_FRACTION`
    of the canvas. [] when the picture has no dominant flat colour. `photo_boxes` picks from
    them; computing them once serves both of its uses (photo boxes and blobs)."""
    import cv2

    if min(image.size) < 64:
        return []
    # Work at about 256 px: boxes only need to be found to a few pixels.
    step = max(1, min(image.size) // 256)
    small = image.reduce(step) if step > 1 else image
    rgb = np.asarray(small.convert("RGB"), dtype=np.int16)
    height, width = rgb.shape[:2]
    # The canvas colour: the most frequent colour (photos rarely repeat one exact colour).
    # 18 bits, so int32 (in int16 the red bits overflowed: a grey or beige page was read as
    # another colour and nothing was found on it).
    sample = rgb[::2, ::2].reshape(-1, 3).astype(np.int32) // 4
    packed = (sample[:, 0] << 12) | (sample[:, 1] << 6) | sample[:, 2]
    counts = np.bincount(packed, minlength=1 << 18)
    if counts.max() < 0.1 * len(packed):
        return []  # no dominant flat colour: not a picture on a canvas
    top = int(counts.argmax())
    canvas = np.array([(top >> 12) & 63, (top >> 6) & 63, top & 63]) * 4 + 2
    mask = (np.abs(rgb - canvas).max(axis=2) > BOX_COLOUR_DELTA).astype(np.uint8)
    opening = 7 if step == 1 else 5
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((opening, opening), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    blocks: list[Block] = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if w * step < 32 or h * step < 32:
            continue
        if not BOX_MIN_FRACTION <= w * h / (width * height) <= BOX_MAX_FRACTION:
            continue
        box = (x * step, y * step, min(w * step, image.width - x * step),
               min(h * step, image.height - y * step))
        blocks.append(Block(box, area, w, h))
    return blocks


def photo_boxes(image: Image.Image, *, min_fill: float = BOX_MIN_FILL,
                max_aspect: float | None = None,
                blocks: list[Block] | None = None) -> list[Box]:
    """Rectangles that look like a picture placed on a flat canvas, largest first (at most
    `MAX_BOXES`): `canvas_blocks` that fill their bounding box (at least `min_fill` of it; a
    lower fill also finds art or a cut-out on a page of its own background colour).
    `max_aspect`: skip blocks longer than this on one side than on the other (banners, rules).
    `blocks`: `canvas_blocks(image)` when the caller has them already."""
    found = canvas_blocks(image) if blocks is None else blocks
    kept = [b for b in found
            if b.area >= min_fill * b.width * b.height
            and (max_aspect is None or max(b.width, b.height) <= max_aspect * min(b.width,
                                                                                b.height))]
    kept.sort(key=lambda b: -b.width * b.height)
    return [b.box for b in kept[:MAX_BOXES]]


# Collage grids: gutters are full-width rows / full-height columns of one flat colour.
GRID_MIN_BAND = 0.15  # a cell's side is at least this fraction of the picture's side
GRID_MAX_BANDS = 4


def _bands(lines: np.ndarray) -> list[tuple[int, int]]:
    """Runs of non-flat lines between flat gutters, as (start, length)."""
    flat = lines.std(axis=1) < FLAT_LINE_STD
    out: list[tuple[int, int]] = []
    start = None
    for i, is_flat in enumerate([*flat.tolist(), True]):
        if not is_flat and start is None:
            start = i
        elif is_flat and start is not None:
            out.append((start, i - start))
            start = None
    return out


def grid_cells(image: Image.Image) -> list[Box]:
    """The cells of a collage (2x1 up to 4x4 pictures separated by flat gutters), or [] when
    the picture is not one: every band between gutters must be at least `GRID_MIN_BAND` of the
    side (text lines and thin rules are not cells)."""
    if min(image.size) < 64:
        return []
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    height, width = grey.shape
    rows = _bands(grey)
    cols = _bands(grey.T)
    if not rows or not cols or len(rows) > GRID_MAX_BANDS or len(cols) > GRID_MAX_BANDS:
        return []
    if len(rows) * len(cols) < 2:
        return []
    if min(n for _, n in rows) < GRID_MIN_BAND * height or \
            min(n for _, n in cols) < GRID_MIN_BAND * width:
        return []
    return [(x, y, w, h) for y, h in rows for x, w in cols]
