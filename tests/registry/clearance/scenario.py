"""A clearance scenario on real photographs, shared by the registry, API, CLI and kill tests.

Catalog (rightsholder "Harbor Studio"): astronaut tagged `open` (Lumen AI may train), coffee tagged
`closed` (notAllowed), chelsea tagged `limited` (constrained: legal review). The dataset holds
transformed copies of each (made here with Pillow), an exact copy, unrelated photos, and bad files
(truncated JPEG, a header bomb, text posing as a PNG, an unknown binary).
"""

from __future__ import annotations

import io
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps
from sqlalchemy.orm import Session, sessionmaker

from registry.catalog import BlobStore
from registry.catalog.importer import ImportOptions, import_file
from registry.fingerprint import fingerprint_new_asset
from tests.factories import TEXT_AS_PNG, header_bomb_png, truncated_jpeg
from tests.photos import skimage_photo

HOLDER = "Harbor Studio"
LICENSEE = "Lumen AI"
CATALOG = {"astronaut.png": "open", "coffee.png": "closed", "chelsea.png": "limited"}
UNRELATED = ("motorcycle_left.png", "camera.png", "horse.png")

POLICY = textwrap.dedent(f"""\
    id: harbor-lumen-training
    title: Harbor Studio stills for Lumen AI
    licensor: {HOLDER}
    licensee: {LICENSEE}
    grants:
      - use: ai_training
        permission: allowed
        scope:
          tags: [open]
      - use: ai_training
        permission: notAllowed
        scope:
          tags: [closed]
      - use: ai_training
        permission: constrained
        constraint_info: research models only, decided by legal case by case
        scope:
          tags: [limited]
    """)


def _rgb(name: str) -> Image.Image:
    return Image.open(skimage_photo(name)).convert("RGB")


def _resized(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)),
                        Image.Resampling.LANCZOS)


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = round(image.width * fraction), round(image.height * fraction)
    x, y = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((x, y, x + w, y + h))


def _save(image: Image.Image, path: Path, fmt: str = "JPEG") -> None:
    out = io.BytesIO()
    image.save(out, fmt, quality=80) if fmt == "JPEG" else image.save(out, fmt)
    path.write_bytes(out.getvalue())


# item key -> expected verdict
EXPECTED = {
    "open/astronaut-small.jpg": "clear",
    "open/astronaut-crop.jpg": "clear",
    "open/astronaut-exact.png": "clear",
    "closed/coffee-small.jpg": "blocked",
    "closed/coffee-bright.jpg": "blocked",
    "limited/chelsea-small.jpg": "review",
    "limited/chelsea-mirror.jpg": "review",
    "other/motorcycle_left.jpg": "clear",
    "other/camera.jpg": "clear",
    "other/horse.jpg": "clear",
    "bad/truncated.jpg": "error",
    "bad/bomb.png": "error",
    "bad/notes.png": "error",
    "bad/unknown.bin": "error",
}
STUDIO_ITEMS = {k for k in EXPECTED if k.split("/")[0] in ("open", "closed", "limited")}


def write_dataset(folder: Path) -> Path:
    """The dataset folder: every key of EXPECTED."""
    for sub in ("open", "closed", "limited", "other", "bad"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    astronaut, coffee, chelsea = _rgb("astronaut.png"), _rgb("coffee.png"), _rgb("chelsea.png")
    _save(_resized(astronaut, 0.6), folder / "open/astronaut-small.jpg")
    _save(_crop(astronaut, 0.85), folder / "open/astronaut-crop.jpg")
    shutil.copy(skimage_photo("astronaut.png"), folder / "open/astronaut-exact.png")
    _save(_resized(coffee, 0.5), folder / "closed/coffee-small.jpg")
    _save(ImageEnhance.Brightness(coffee).enhance(1.25), folder / "closed/coffee-bright.jpg")
    _save(_resized(chelsea, 0.7), folder / "limited/chelsea-small.jpg")
    _save(ImageOps.mirror(chelsea), folder / "limited/chelsea-mirror.jpg")
    for name in UNRELATED:
        _save(_rgb(name), folder / f"other/{Path(name).stem}.jpg")
    (folder / "bad/truncated.jpg").write_bytes(truncated_jpeg())
    (folder / "bad/bomb.png").write_bytes(header_bomb_png())
    (folder / "bad/notes.png").write_bytes(TEXT_AS_PNG)
    (folder / "bad/unknown.bin").write_bytes(bytes(range(256)) * 8)
    return folder


def write_policies(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "harbor-lumen.yaml").write_text(POLICY, encoding="utf-8")
    return folder


def import_catalog(factory: sessionmaker[Session], store: BlobStore) -> dict[str, int]:
    """Register the catalog photos with their fingerprints; photo name -> asset id."""
    ids = {}
    for name, tag in CATALOG.items():
        result = import_file(factory, store, skimage_photo(name),
                             ImportOptions(rightsholder=HOLDER, tags=[tag]), fingerprint_new_asset)
        assert result.status == "created", result
        assert result.asset_id is not None
        ids[name] = result.asset_id
    return ids


@dataclass(frozen=True)
class Scenario:
    dataset: Path
    policies: Path
    asset_ids: dict[str, int]


def build(tmp: Path, factory: sessionmaker[Session], store: BlobStore) -> Scenario:
    return Scenario(write_dataset(tmp / "dataset"), write_policies(tmp / "policies"),
                    import_catalog(factory, store))


def write_large_dataset(folder: Path, extra: int) -> Path:
    """The scenario dataset plus `extra` distinct unrelated photos (resized to distinct sizes)."""
    write_dataset(folder)
    (folder / "extra").mkdir(exist_ok=True)
    sources = [_rgb(name) for name in UNRELATED]
    for i in range(extra):
        image = sources[i % len(sources)]
        _save(_resized(image, 0.2 + 0.002 * i), folder / f"extra/{i:04d}.jpg")
    return folder
