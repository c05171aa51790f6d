"""Matching a query picture (or video) against the catalog: a two-stage cascade.

Stage 1, hashes (about 10-30 ms): PDQ and pHash of the query and of its content box (uniform
borders trimmed) are looked up in faiss binary indexes of every catalog hash (8 dihedral
variants + 18 overlapping windows per asset). A PDQ hit at distance <= `max_distance` (31) with
quality >= 50 on both sides is a match; so is a pHash hit at <= 6 of 64 bits.

Stage 2, keypoints (about 0.1-0.4 s), only when stage 1 found nothing: RootSIFT descriptors of
the query vote in a faiss L2 index over all catalog descriptors; the 3 best-voted keypoint sets,
plus assets that stage 1 saw near the threshold, are verified with a RANSAC homography
(>= 12 inliers, spread over the asset, orientation-preserving, convex outline). This recovers
off-centre crops, overlays, small rotations and pictures embedded in screenshots.

The loaded state is picklable (it pickles as the index folder and generation and reloads from
disk), so worker processes can each hold a Matcher.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import faiss
import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.fingerprint import keypoints
from registry.fingerprint.base import DIHEDRAL_NAMES, SignalType
from registry.fingerprint.features import HASH_SIDE_PX, work_image
from registry.fingerprint.index import LoadedIndex, ensure_index, load_index
from registry.fingerprint.pdq import Pdq
from registry.fingerprint.phash import PHash
from registry.fingerprint.regions import Box, content_box, crop, photo_boxes
from registry.media.loader import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    _open_bytes,
    _sniff_video,
    load_image,
)
from registry.media.video import sample_frames

# PDQ hits up to this distance are not matches, but make their asset a stage-2 candidate.
NEAR_PDQ_DISTANCE = 63
VOTE_CANDIDATES = 3
# Draft decoding keeps both sides >= 384 px: a 12 MP JPEG decodes at 1/4 or 1/8 size.
QUERY_DRAFT_SIZE = (384, 384)
# The inverse of each dihedral variant (to name what the query did to the asset).
_INVERSE = {"rot90": "rot270", "rot270": "rot90"}
MIN_VOTES = 4
VOTE_NEIGHBOURS = 4
MAX_QUERY_VIDEO_FRAMES = 300


@dataclass(frozen=True)
class Match:
    """One catalog asset found in a query.

    distance: Hamming bits for hash signals (lower is closer); for "sift", the share of
    ratio-test matches that RANSAC rejected (0..1). region: x, y, w, h in the query's pixels.
    time_s: the query's time code for a video query, else the asset frame's time for a video
    asset. transform: what the query did to the asset, where the signal tells (e.g. "rot90",
    "crop", "padding", "geometric rot=5 scale=0.50").
    """

    asset_id: int
    asset_sha256: str
    signal: str
    distance: int | float
    confidence: float
    region: tuple[int, int, int, int] | None = None
    time_s: float | None = None
    transform: str | None = None
    asset_time_s: float | None = None
    inliers: int | None = None
    time_codes: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "asset_sha256": self.asset_sha256,
            "signal": self.signal,
            "distance": self.distance,
            "confidence": round(self.confidence, 3),
            "region": list(self.region) if self.region is not None else None,
            "time_s": self.time_s,
            "transform": self.transform,
            "asset_time_s": self.asset_time_s,
            "inliers": self.inliers,
            "time_codes": list(self.time_codes),
        }


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


def _hash_confidence(distance: int, threshold: int) -> float:
    return max(0.0, 1.0 - 0.5 * distance / (threshold + 1))


def _sift_confidence(inliers: int) -> float:
    return min(1.0, 0.5 + 0.5 * (inliers - keypoints.MIN_INLIERS + 1) / 40)


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 3)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / max(1, aw * ah + bw * bh - inter)


@dataclass
class _Query:
    label: str  # "full", "trim" (uniform borders removed) or "box" (a photo on a canvas)
    box: Box  # in the work image
    image: Image.Image


class Matcher:
    """Catalog matcher over one index generation. Build with `Matcher.load` (checks the
    database and rebuilds a stale index) or `Matcher.open` (disk only, for workers)."""

    def __init__(self, index_dir: Path, loaded: LoadedIndex, *, max_distance: int = 31,
                 exhaustive: bool = False) -> None:
        self.index_dir = index_dir
        self.max_distance = max_distance
        self.exhaustive = exhaustive
        self._loaded = loaded
        self._prepare()

    # --- construction and pickling ---------------------------------------------------------

    @classmethod
    def load(cls, session: Session, *, index_dir: Path, max_distance: int = 31,
             exhaustive: bool = False) -> Matcher:
        generation = ensure_index(session, index_dir)
        return cls(index_dir, load_index(index_dir, generation), max_distance=max_distance,
                   exhaustive=exhaustive)

    @classmethod
    def open(cls, index_dir: Path, *, generation: str | None = None, max_distance: int = 31,
             exhaustive: bool = False) -> Matcher:
        return cls(index_dir, load_index(index_dir, generation), max_distance=max_distance,
                   exhaustive=exhaustive)

    def __getstate__(self) -> dict[str, Any]:
        return {"index_dir": str(self.index_dir), "generation": self._loaded.generation,
                "max_distance": self.max_distance, "exhaustive": self.exhaustive}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.index_dir = Path(state["index_dir"])
        self.max_distance = int(state["max_distance"])
        self.exhaustive = bool(state["exhaustive"])
        self._loaded = load_index(self.index_dir, state["generation"])
        self._prepare()

    def _prepare(self) -> None:
        keys = self._loaded.keys
        # faiss keeps the only float copy; verification re-derives RootSIFT per candidate set
        # from the uint8 descriptors (600 x 128 values: microseconds).
        self._key_index = faiss.IndexFlatL2(128)
        if len(keys.descriptors):
            self._key_index.add(keypoints.root_sift(keys.descriptors))

    @property
    def generation(self) -> str:
        return self._loaded.generation

    @property
    def asset_count(self) -> int:
        return len(self._loaded.sha256)

    # --- matching ---------------------------------------------------------------------------

    def _queries(self, img: Image.Image) -> list[_Query]:
        out = [_Query("full", (0, 0, img.width, img.height), img)]
        box = content_box(img)
        if box is not None:
            out.append(_Query("trim", box, crop(img, box)))
        for found in photo_boxes(img):
            if all(_overlap(found, q.box) < 0.9 for q in out):
                out.append(_Query("box", found, crop(img, found)))
        return out

    def _hash_stage(self, queries: list[_Query], scale: tuple[float, float]
                    ) -> tuple[dict[int, Match], set[int]]:
        """PDQ (the query's 8 dihedral variants: crops of flipped or turned copies match the
        catalog windows) and pHash lookups; returns matches and near-miss assets."""
        best: dict[int, Match] = {}
        near: set[int] = set()
        probes: dict[str, list[tuple[_Query, str, bytes]]] = {Pdq.name: [], PHash.name: []}
        for q in queries:
            variants = Pdq.compute_dihedral(q.image)
            if variants[0].quality < Pdq.quality_threshold:
                continue  # too flat to say anything, on every signal
            probes[Pdq.name] += [(q, name, v.bits)
                                 for name, v in zip(DIHEDRAL_NAMES, variants, strict=True)]
            probes[PHash.name].append((q, "identity", PHash.compute(q.image).bits))
        for signal, threshold, reach in (
            (Pdq, self.max_distance, max(NEAR_PDQ_DISTANCE, self.max_distance)),
            (PHash, PHash.match_threshold, PHash.match_threshold),
        ):
            table = self._loaded.hashes[signal.name]
            usable = probes[signal.name]
            if table.index.ntotal == 0 or not usable:
                continue
            codes = np.frombuffer(b"".join(b for _, _, b in usable), np.uint8).reshape(
                len(usable), -1)
            lims, dist, ids = table.index.range_search(codes, reach + 1)
            for qi, (q, variant, _) in enumerate(usable):
                for j in range(lims[qi], lims[qi + 1]):
                    row, d = int(ids[j]), int(dist[j])
                    asset_id = int(table.asset_ids[row])
                    if d > threshold:
                        near.add(asset_id)
                        continue
                    match = self._hash_match(signal, table, row, d, threshold, q, variant,
                                             scale)
                    held = best.get(asset_id)
                    if held is None or match.confidence > held.confidence:
                        best[asset_id] = match
        return best, near - set(best)

    def _hash_match(self, signal: type[SignalType], table: Any, row: int, d: int,
                    threshold: int, q: _Query, variant: str,
                    scale: tuple[float, float]) -> Match:
        asset_id = int(table.asset_ids[row])
        region_name = table.region_names[int(table.regions[row])]
        kind, _, stored = region_name.partition("/")
        undone = _INVERSE.get(variant, variant)  # what the query did, seen from the asset
        if kind != "full":
            transform = "crop" if variant == "identity" else f"crop+{undone}"
        elif variant == "identity":
            transform = stored
        else:
            transform = undone if stored == "identity" else "dihedral"
        if q.label != "full":
            where = "padding" if q.label == "trim" else "embedded"
            transform = where if transform == "identity" else f"{transform}+{where}"
        x, y, w, h = q.box
        sx, sy = scale
        return Match(
            asset_id, self._loaded.sha256.get(asset_id, ""), signal.name, d,
            _hash_confidence(d, threshold),
            (round(x * sx), round(y * sy), round(w * sx), round(h * sy)),
            _nan_to_none(float(table.times[row])), transform,
            asset_time_s=_nan_to_none(float(table.times[row])),
        )

    def _keypoint_stage(self, img: Image.Image, near_assets: set[int],
                        scale: tuple[float, float]) -> dict[int, Match]:
        table = self._loaded.keys
        if self._key_index.ntotal == 0:
            return {}
        query = keypoints.extract(img, query=True)
        if len(query) < 8:
            return {}
        qroot = keypoints.root_sift(query.descriptors)
        k = min(VOTE_NEIGHBOURS, self._key_index.ntotal)
        dist, ids = self._key_index.search(qroot, k)
        owners = table.owner[np.clip(ids, 0, None)]
        first = owners[:, 0]
        # Ratio test against the nearest descriptor of a different keypoint set.
        other = np.full(len(first), np.inf, np.float32)
        for col in range(k - 1, 0, -1):
            differs = (owners[:, col] != first) & (ids[:, col] >= 0)
            other = np.where(differs, dist[:, col], other)
        passed = (ids[:, 0] >= 0) & (dist[:, 0] < (keypoints.RATIO ** 2) * other)
        votes = np.bincount(first[passed], minlength=len(table.counts))
        order = np.argsort(-votes)[:VOTE_CANDIDATES]
        sets = [int(s) for s in order if votes[s] >= MIN_VOTES]
        for asset_id in near_assets:
            sets += [int(s) for s in np.flatnonzero(table.asset_ids == asset_id)[:1]]
        found = self._verify_sets(query, qroot, list(dict.fromkeys(sets)), scale, mirrored=False)
        if not found and near_assets:
            # Mirror + crop/rotation defeats both stages; only retry mirrored for assets that
            # stage 1 saw near the threshold, so non-matching items do not pay twice.
            mirror = keypoints.extract(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                       query=True)
            if len(mirror) >= 8:
                near_sets = [int(s) for asset_id in sorted(near_assets)
                             for s in np.flatnonzero(table.asset_ids == asset_id)[:1]]
                found = self._verify_sets(mirror, keypoints.root_sift(mirror.descriptors),
                                          near_sets, scale, mirrored=True)
        return found

    def _verify_sets(self, query: keypoints.KeypointSet, qroot: np.ndarray, sets: list[int],
                     scale: tuple[float, float], *, mirrored: bool) -> dict[int, Match]:
        table = self._loaded.keys
        found: dict[int, Match] = {}
        sx, sy = scale
        for set_no in sets:
            asset_id = int(table.asset_ids[set_no])
            asset_keys = table.keys(set_no)
            check = keypoints.verify(query, qroot, asset_keys,
                                     keypoints.root_sift(asset_keys.descriptors))
            if check is None:
                continue
            x, y, w, h = check.region
            if mirrored:
                x = query.width - x - w
            t = _nan_to_none(float(table.times[set_no]))
            how = f"geometric rot={check.angle_deg:.0f} scale={check.scale:.2f}"
            match = Match(
                asset_id, self._loaded.sha256.get(asset_id, ""), "sift",
                round(1 - check.inliers / max(check.good, 1), 3),
                _sift_confidence(check.inliers),
                (round(x * sx), round(y * sy), round(w * sx), round(h * sy)), t,
                f"flip_h+{how}" if mirrored else how,
                asset_time_s=t, inliers=check.inliers,
            )
            held = found.get(asset_id)
            if held is None or match.confidence > held.confidence:
                found[asset_id] = match
        return found

    def match_image(self, image: Image.Image) -> list[Match]:
        """Catalog assets found in one picture, best first (empty when none)."""
        img = work_image(image)
        small = work_image(img, HASH_SIDE_PX)
        best, near = self._hash_stage(
            self._queries(small), (image.width / small.width, image.height / small.height))
        if not best or self.exhaustive:
            scale = (image.width / img.width, image.height / img.height)
            for asset_id, match in self._keypoint_stage(img, near, scale).items():
                held = best.get(asset_id)
                if held is None or match.confidence > held.confidence:
                    best[asset_id] = match
        return sorted(best.values(), key=lambda m: (-m.confidence, m.asset_id))

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
            image = load_image(source, name=name, max_bytes=max_bytes, max_pixels=max_pixels,
                               draft_size=QUERY_DRAFT_SIZE)
            return MatchResult(name, None, tuple(self.match_image(image)))
        except RegistryError as exc:
            return MatchResult(name, exc.message, ())
        except (OSError, ValueError, cv2.error) as exc:  # decoder trouble past the loader
            return MatchResult(name, f"{name}: cannot process media ({exc})", ())

    def match_files(self, sources: Iterable[Path | str], **kwargs: Any) -> list[MatchResult]:
        return [self.match_file(s, name=str(s), **kwargs) for s in sources]
