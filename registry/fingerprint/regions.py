"""Where to hash: overlapping windows of catalog assets, and the content box of a query.

Whole-image hashes fail on crops and on pictures placed inside a larger canvas (FIELD-NOTES:
recall about 0). Two cheap fixes before the keypoint stage:
- catalog side: hash 3x3 grids of windows covering 80% and 60% of each side, so that a crop of
  the asset is close to one of them;
- query side: trim uniform borders (letterbox, pillarbox, padding) and hash the content box too.
"""

from __future__ import annotations

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
