"""Helpers for the fingerprint tests: real photos into the catalog, and videos made of them."""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from registry.catalog import BlobStore, ensure_rightsholder, register_asset
from registry.catalog.models import Asset
from registry.db import make_engine, make_session_factory, migrate
from registry.fingerprint import Matcher, fingerprint_new_asset
from tests.photos import SHARED_FIXTURES, SKIMAGE_DIR

# Real photos that are not in the test catalogs: queries that must match nothing.
DISTRACTORS: list[Path] = [
    SKIMAGE_DIR / "retina.jpg",
    SKIMAGE_DIR / "clock_motion.png",
    SKIMAGE_DIR / "color.png",
    SKIMAGE_DIR / "ihc.png",
    SKIMAGE_DIR / "cell.png",
    SKIMAGE_DIR / "text.png",
    SHARED_FIXTURES / "pdq" / "labelme-subset" / "q0003.jpg",
    SHARED_FIXTURES / "pdq" / "labelme-subset" / "q0004.jpg",
    SHARED_FIXTURES / "pdq" / "misc-images" / "small.jpg",
]


def add_photo(session: Session, store: BlobStore, path: Path, *,
              holder: str = "Northwind Games") -> Asset:
    """Register a photo and fingerprint it, as `clearhouse assets import` does."""
    data = path.read_bytes()
    asset, created = register_asset(session, store=store, data=data, name=str(path),
                                    rightsholder=ensure_rightsholder(session, name=holder))
    if created:
        fingerprint_new_asset(session, asset, data)
    return asset


def make_video(photos: Sequence[Path], *, seconds_each: float = 2.0, fps: int = 10,
               size: tuple[int, int] = (320, 240)) -> bytes:
    """An H.264 MP4 showing each photo in turn (a slow zoom, so frames differ)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for path in photos:
            picture = Image.open(path).convert("RGB")
            frames = round(seconds_each * fps)
            for i in range(frames):
                zoom = 1 + 0.04 * i / frames
                w, h = picture.width / zoom, picture.height / zoom
                x, y = (picture.width - w) / 2, (picture.height - h) / 2
                frame = picture.crop((round(x), round(y), round(x + w), round(y + h))).resize(size)
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame),
                                                                       format="rgb24")):
                    box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return out.getvalue()


def asset_ids(session: Session) -> list[int]:
    return [a.id for a in session.query(Asset).order_by(Asset.id)]


def photo_catalog(root: Path, paths: Iterable[Path]) -> tuple[dict[Path, int], bytes]:
    """A SQLite catalog of `paths` under `root`, imported as `clearhouse assets import` does:
    each path's asset id, and the synced Matcher pickled for worker processes."""
    url = f"sqlite:///{root / 'catalog.db'}"
    migrate(url)
    engine = make_engine(url)
    store = BlobStore(root / "blobs")
    ids: dict[Path, int] = {}
    with make_session_factory(engine)() as session:
        for path in paths:
            ids[path] = add_photo(session, store, path).id
        session.commit()
        matcher = Matcher.load(session, index_dir=root / "index")
    engine.dispose()
    return ids, pickle.dumps(matcher)


@dataclass
class RecallOutcome:
    """What a recall test measured for one transform."""

    found: int = 0
    total: int = 0
    false: list[tuple[str, int]] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    ranked_lower: list[str] = field(default_factory=list)  # misses naming the right asset later
    seconds_unrelated: list[float] = field(default_factory=list)  # distractor queries

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else 0.0
