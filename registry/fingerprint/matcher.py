"""Matching a query picture (or video) against the catalog: a pipeline of stages.

The `Matcher` holds each stage's loaded index (`stages/`) and runs them in order:
0. exact: the file's sha256 is a catalog asset's (a dictionary lookup);
1. hashes: one stage per installed signal type (PDQ, pHash) over the query's windows (whole
   picture, uniform borders trimmed, photo boxes on a flat canvas);
2. local features, only when stages 0-1 found nothing (or `exhaustive`): ORB votes for
   candidates, RANSAC on the few candidates, SIFT when ORB is unsure.
It merges what they find (the most confident match per asset). A stage is one module; the
Matcher knows them only through the `Stage` / `StageIndex` protocol.

The loaded state is picklable (it pickles as the index folder and the manifest it was loaded
from, and reloads from disk), so worker processes can each hold a Matcher. `refresh()` picks up
segments appended since (new assets) and reuses the ones already in memory.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import faiss
from PIL import Image
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.fingerprint.features import HASH_SIDE_PX, decode_visible, work_image
from registry.fingerprint.index import (
    default_stages,
    read_manifest,
    segments_of,
    sync_index,
)
from registry.fingerprint.regions import Box, content_box, crop, photo_boxes
from registry.fingerprint.stages.base import (
    Match,
    Probe,
    Stage,
    StageIndex,
    Window,
    keep_best,
)
from registry.fingerprint.stages.exact import ExactStage
from registry.media.loader import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    _open_bytes,
    _sniff_video,
)
from registry.media.video import sample_frames

# Draft decoding keeps both sides >= 384 px: a 12 MP JPEG decodes at 1/4 or 1/8 size.
QUERY_DRAFT_SIZE = (384, 384)
MAX_QUERY_VIDEO_FRAMES = 300
# How often `refresh` looks at the manifest on disk (a running server or worker sees new assets
# within this, plus the time the next sync takes).
REFRESH_SECONDS = 30.0

__all__ = ["Match", "MatchResult", "Matcher"]


@dataclass(frozen=True)
class MatchResult:
    path: str
    error: str | None = None
    matches: tuple[Match, ...] = field(default_factory=tuple)

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error,
                "matches": [m.as_dict() for m in self.matches]}


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / max(1, aw * ah + bw * bh - inter)


def query_windows(img: Image.Image) -> list[Window]:
    """The views of a (small) query picture that the hash stages probe."""
    out = [Window("full", (0, 0, img.width, img.height), img)]
    box = content_box(img)
    if box is not None:
        out.append(Window("trim", box, crop(img, box)))
    for found in photo_boxes(img):
        if all(_overlap(found, w.box) < 0.9 for w in out):
            out.append(Window("box", found, crop(img, found)))
    return out


def prepare(image: Image.Image, *, sha256: str | None = None) -> Probe:
    """The query picture, prepared once for every stage (transparency composited on the
    neutral grey the catalog's art is fingerprinted on)."""
    work = work_image(image)
    small = work_image(work, HASH_SIDE_PX)
    return Probe(work, small, (image.width / work.width, image.height / work.height),
                 (image.width / small.width, image.height / small.height), sha256,
                 query_windows(small))


class Matcher:
    """Runs the stages over one manifest of the index. Build with `Matcher.load` (syncs the index
    with the database first) or `Matcher.open` (disk only, for workers)."""

    def __init__(self, index_dir: Path, manifest: dict[str, Any], *, max_distance: int = 31,
                 exhaustive: bool = False) -> None:
        self.index_dir = index_dir
        self.max_distance = max_distance
        self.exhaustive = exhaustive
        # A query is a small batch: faiss's OpenMP threads spin-wait for work on a busy machine
        # (a lookup took 50-60 ms instead of 0.4 ms with 2 threads; issue 15's measurement), and
        # workers get one process per core anyway.
        faiss.omp_set_num_threads(1)
        self._stages: list[Stage] = default_stages(max_distance=max_distance)
        self._opened: dict[Path, Any] = {}
        self._indexes: dict[str, StageIndex] = {}
        self._checked = time.monotonic()
        self._manifest: dict[str, Any] = {}
        self._load(manifest)

    # --- construction, refresh and pickling ------------------------------------------------

    @classmethod
    def load(cls, session: Session, *, index_dir: Path, max_distance: int = 31,
             exhaustive: bool = False) -> Matcher:
        manifest = sync_index(session, index_dir)
        return cls(index_dir, manifest, max_distance=max_distance, exhaustive=exhaustive)

    @classmethod
    def open(cls, index_dir: Path, *, generation: str | None = None, max_distance: int = 31,
             exhaustive: bool = False) -> Matcher:
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise FileNotFoundError(f"no fingerprint index under {index_dir}")
        return cls(index_dir, manifest, max_distance=max_distance, exhaustive=exhaustive)

    def __getstate__(self) -> dict[str, Any]:
        return {"index_dir": str(self.index_dir), "manifest": self._manifest,
                "max_distance": self.max_distance, "exhaustive": self.exhaustive}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["index_dir"]), state["manifest"],  # type: ignore[misc]
                      max_distance=int(state["max_distance"]),
                      exhaustive=bool(state["exhaustive"]))

    def _load(self, manifest: dict[str, Any]) -> None:
        """Open the manifest's segments, reusing those already in memory."""
        folders = {stage.name: [self.index_dir / s.dir
                                for s in segments_of(manifest, stage.name)]
                   for stage in self._stages}
        wanted = {f for fs in folders.values() for f in fs}
        self._opened = {f: seg for f, seg in self._opened.items() if f in wanted}
        assets = ExactStage.asset_table(folders[ExactStage.name])
        self._indexes = {stage.name: stage.load(folders[stage.name], assets, self._opened)
                         for stage in self._stages}
        self._assets = assets
        self._manifest = manifest

    def refresh(self, session: Session | None = None, *, force: bool = False) -> bool:
        """Pick up what was added to the index since (at most every `REFRESH_SECONDS` unless
        `force`); with a session, sync the index with the database first. True if it changed."""
        now = time.monotonic()
        if not force and now - self._checked < REFRESH_SECONDS:
            return False
        self._checked = now
        manifest = sync_index(session, self.index_dir) if session is not None \
            else read_manifest(self.index_dir)
        if manifest is None or manifest.get("serial") == self._manifest.get("serial"):
            return False
        self._load(manifest)
        return True

    @property
    def generation(self) -> str:
        return str(self._manifest.get("serial"))

    @property
    def asset_count(self) -> int:
        return len(self._assets)

    def memory_bytes(self) -> dict[str, int]:
        """Bytes each stage holds in memory (verification data on disk excluded)."""
        return {name: index.memory_bytes() for name, index in self._indexes.items()}

    # --- matching ---------------------------------------------------------------------------

    def match_probe(self, probe: Probe) -> list[Match]:
        """Run the stages in order: exact, hashes, then local features if nothing was found
        (or always, when `exhaustive`). A non-decisive stage's matches (pHash) are not kept:
        their assets become hints that stage 2 verifies."""
        best: dict[int, Match] = {}
        hints: dict[int, Match] = {}
        for stage in self._stages:
            if stage.name == "local" and best and not self.exhaustive:
                break
            if stage.name.startswith("hash.") and best and not self.exhaustive:
                continue  # an exact copy needs no hash
            if stage.name == "local":
                probe.hints = [m.asset_id for m in sorted(
                    hints.values(), key=lambda m: (-m.confidence, m.asset_id))
                    if m.asset_id not in best]
            found = self._indexes[stage.name].query(probe).values()
            for match in found:
                keep_best(best if getattr(stage, "decisive", True) else hints, match)
        return sorted(best.values(), key=lambda m: (-m.confidence, m.asset_id))

    def match_image(self, image: Image.Image, *, sha256: str | None = None) -> list[Match]:
        """Catalog assets found in one picture, best first (empty when none). `sha256`: of the
        file's bytes, when known (stage 0)."""
        return self.match_probe(prepare(image, sha256=sha256))

    def match_video(self, source: bytes | str, *, name: str) -> list[Match]:
        """Assets found in any sampled frame; each reports the query time codes it matched."""
        per_asset: dict[int, tuple[Match, list[float]]] = {}
        stream: Any = io.BytesIO(source) if isinstance(source, bytes) else source
        for count, frame in enumerate(sample_frames(stream, name=name)):
            if count >= MAX_QUERY_VIDEO_FRAMES:
                break
            for m in self.match_image(frame.image):
                held = per_asset.get(m.asset_id)
                times = held[1] if held else []
                times.append(round(frame.time_s, 3))
                if held is None or m.confidence > held[0].confidence:
                    per_asset[m.asset_id] = (
                        Match(m.asset_id, m.asset_sha256, m.signal, m.distance, m.confidence,
                              m.region, round(frame.time_s, 3), m.transform, m.asset_time_s,
                              m.inliers), times)
        out = [Match(m.asset_id, m.asset_sha256, m.signal, m.distance, m.confidence, m.region,
                     m.time_s, m.transform, m.asset_time_s, m.inliers, tuple(times))
               for m, times in per_asset.values()]
        return sorted(out, key=lambda m: (-m.confidence, m.asset_id))

    def match_file(self, source: Path | str | bytes, *, name: str,
                   max_bytes: int = DEFAULT_MAX_BYTES,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> MatchResult:
        """Match one file (image or video). Bad media never raises: it comes back as `error`."""
        try:
            with _open_bytes(source, name, max_bytes) as stream:
                is_video = _sniff_video(stream) is not None
            if is_video:
                if isinstance(source, bytes):
                    return MatchResult(name, None, tuple(self.match_video(source, name=name)))
                return MatchResult(name, None, tuple(self.match_video(str(source), name=name)))
            # Read once (the size was checked above): decoded here and hashed for stage 0.
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            # A query with transparency is seen as the catalog sees its art: on neutral grey.
            image, _mask = decode_visible(data, name=name, max_bytes=max_bytes,
                                          max_pixels=max_pixels, draft_size=QUERY_DRAFT_SIZE)
            digest = hashlib.sha256(data).hexdigest()
            return MatchResult(name, None, tuple(self.match_image(image, sha256=digest)))
        except RegistryError as exc:
            return MatchResult(name, exc.message, ())
        except (OSError, ValueError, cv2.error) as exc:  # decoder trouble past the loader
            return MatchResult(name, f"{name}: cannot process media ({exc})", ())

    def match_files(self, sources: Iterable[Path | str], **kwargs: Any) -> list[MatchResult]:
        return [self.match_file(s, name=str(s), **kwargs) for s in sources]
