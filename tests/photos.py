"""Real photographs for tests: scikit-image's bundled samples and the PDQ reference photos.

No downloads: every file here ships inside an installed PyPI package or ../shared/fixtures.
"""

from __future__ import annotations

from pathlib import Path

import skimage.data

SKIMAGE_DIR = Path(skimage.data.__file__).parent
SHARED_FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"

# Colour and grey photographs of real scenes (not drawings, not microscopy).
SKIMAGE_PHOTOS = [
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "camera.png",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "coins.png",
    "page.png",
    "horse.png",
    "gravel.png",
    "brick.png",
    "grass.png",
]
# PDQ reference photos (ThreatExchange, BSD), quality >= 50.
PDQ_PHOTOS = [
    "pdq/dih/bridge-1-original.jpg",
    "pdq/labelme-subset/q0122.jpg",
    "pdq/labelme-subset/q0291.jpg",
    "pdq/labelme-subset/q0746.jpg",
    "pdq/labelme-subset/q1050.jpg",
    "pdq/labelme-subset/q2821.jpg",
]


def skimage_photo(name: str) -> Path:
    return SKIMAGE_DIR / name


def photo_paths() -> list[Path]:
    """Every real photo available to tests, skimage first."""
    paths = [SKIMAGE_DIR / n for n in SKIMAGE_PHOTOS]
    paths += [SHARED_FIXTURES / p for p in PDQ_PHOTOS if (SHARED_FIXTURES / p).exists()]
    return paths
