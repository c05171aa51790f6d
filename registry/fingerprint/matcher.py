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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import faiss
import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.fingerprint.base import hamming
from registry.fingerprint.features import HASH_SIDE_PX, decode_visible, has_alpha, work_image
from registry.fingerprint.index import (
    default_stages,
    read_manifest,
    segments_of,
    sync_index,
)
from registry.fingerprint.regions import (
    Box,
    canvas_blocks,
    content_box,
    crop,
    grid_cells,
    photo_boxes,
)
from registry.fingerprint.stages.base import (
    Match,
    MatchKind,
    Probe,
    Stage,
    StageIndex,
    Window,
    keep_best,
)
from registry.fingerprint.stages.exact import ExactStage
from registry.fingerprint.stages.hashes import HashIndex
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
# A decisive hash hit (PDQ) within this many bits of its threshold is near it: not a copy unless
# stage 2 verifies it, else `similar` (review). Measured on the recall tests: true PDQ hits run
# 0-31 bits, the ones above 24 come from pictures shown small (page_20_30) or heavily edited;
# no distractor came within 31.
SIMILAR_BAND_BITS = 7
# Windows for stage 2 alone ("blob"): blocks unlike the page that fill at least this share of
# their box (a portrait flattened on white on a light page fills about half), not banners.
BLOB_MIN_FILL = 0.3
BLOB_MAX_ASPECT = 4.0
# Collage cells probed at most (the largest first).
MAX_TILES = 9
# Windows (photo boxes, collage cells) that stage 2 searches on their own when the whole picture
# found nothing: a picture shown small in a page or a collage has too few keypoints of the whole
# query's budget; its window, searched alone at stage 2's query size, has enough.
MAX_LOCAL_WINDOWS = 9
# A hint (pHash, PDQ near its threshold) whose window covers this share of the query names an
# asset that fills the query: SIFT checks it at the catalog's scale (384 px, about a fifth of
# the query-scale SIFT's cost), not at the query's (768 px, for assets shown small). Hints were
# 15 of the 20 SIFT checks of 150 unrelated bench queries, each 250 ms.
WHOLE_HINT_COVERAGE = 0.5
# A hint (an asset a non-decisive signal, pHash, put within its threshold) is dropped when the
# gating signal (PDQ) of every query window is more than this many bits (of 256) from every
# whole-picture hash of the asset: pHash's 64 bits collide by chance in a large catalog, and
# each hint costs stage 2 a SIFT extraction of the query (40-120 ms). Measured on the recall
# tests: right hints 26-88 bits (88: brick, a repeated texture, turned); on 400 bench queries
# at 10,000 assets, wrong hints 54-120, 140 of the 208 with a PDQ hash above 96.
HINT_MAX_GATE_BITS = 96
# Signals of the local-feature stage (geometric verification).
LOCAL_SIGNALS = ("orb", "sift")
# The asset is wholly in view when this share of its projected outline lies inside the query.
DERIVATIVE_MIN_COVERAGE = 0.9
# The view of the asset is rectified to this longest side before it is hashed.
VIEW_SIDE_PX = 256
# A weak geometric fit (ORB_MIN_INLIERS to ORB_ACCEPT_INLIERS ORB inliers that SIFT could not
# confirm: `Match.weak_geometry`) stands, as a derivative, only when a PDQ hash of the query (of a
# window, or of the asset's rectified view) is within this many bits of the asset's own.
# Measured: posterized, edge-enhanced copies 32 (coins, 13 ORB inliers) and 50 (rocket, 10);
# the only weak fits of 400 bench queries at 10,000 assets were wrong, at 110 and 116 bits.
WEAK_VIEW_MAX_BITS = 56

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


_WHERE = {"box": "embedded", "blob": "embedded", "tile": "collage"}


def _share_inside(a: Box, b: Box) -> float:
    """The share of box a's area that lies inside box b."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / max(aw * ah, 1)


def _ranks_above(a: Match, b: Match) -> bool:
    """A verified match (copy, derivative) outranks a similar one; then confidence decides."""
    return ((a.kind != MatchKind.similar, a.confidence) >
            (b.kind != MatchKind.similar, b.confidence))


def query_windows(img: Image.Image) -> list[Window]:
    """The views of a (small) query picture that the hash stages probe."""
    out = [Window("full", (0, 0, img.width, img.height), img)]
    box = content_box(img)
    if box is not None:
        out.append(Window("trim", box, crop(img, box)))
    blocks = canvas_blocks(img)  # once, for photo boxes and blobs
    for found in photo_boxes(img, blocks=blocks):
        if all(_overlap(found, w.box) < 0.9 for w in out):
            out.append(Window("box", found, crop(img, found)))
    cells = sorted(grid_cells(img), key=lambda b: -b[2] * b[3])[:MAX_TILES]
    for cell in cells:
        if all(_overlap(cell, w.box) < 0.9 for w in out):
            out.append(Window("tile", cell, crop(img, cell)))
    # Stage 2 only: blocks that fill less of their box (art or a cut-out on a page).
    for found in photo_boxes(img, min_fill=BLOB_MIN_FILL, max_aspect=BLOB_MAX_ASPECT,
                             blocks=blocks):
        if all(_overlap(found, w.box) < 0.9 for w in out):
            out.append(Window("blob", found, crop(img, found)))
    return out


def prepare(image: Image.Image, *, sha256: str | None = None,
            on_neutral: bool = False) -> Probe:
    """The query picture, prepared once for every stage (transparency composited on the
    neutral grey the catalog's art is fingerprinted on). `on_neutral`: `image` was composited
    so already."""
    work = work_image(image)
    small = work_image(work, HASH_SIDE_PX)
    return Probe(work, small, (image.width / work.width, image.height / work.height),
                 (image.width / small.width, image.height / small.height), sha256,
                 query_windows(small),
                 on_neutral=on_neutral or (image.mode != "RGB" and has_alpha(image)))


def _covers_query(probe: Probe, region: tuple[int, int, int, int] | None) -> bool:
    """True when a hit's region (in the query's pixels) covers at least `WHOLE_HINT_COVERAGE`
    of the query."""
    if region is None:
        return False
    width = probe.small.width * probe.small_scale[0]
    height = probe.small.height * probe.small_scale[1]
    return region[2] * region[3] >= WHOLE_HINT_COVERAGE * width * height


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
        """Run the stages in order: exact, hashes, then local features unless a confident match
        was found (or always, when `exhaustive`).

        A decisive signal's hit (PDQ) well inside its threshold is a `copy`; one within
        `SIMILAR_BAND_BITS` of the threshold is near it: stage 2 verifies the asset, and if it
        cannot, the hit is kept as `similar` (review). A non-decisive signal's hits (pHash) are
        never kept: their assets only become hints that stage 2 verifies."""
        confident: dict[int, Match] = {}
        near: dict[int, Match] = {}
        unsure: dict[int, Match] = {}  # part of the query against part of an asset: verify
        hints: dict[int, Match] = {}
        for stage in self._stages:
            if stage.name == "local" and confident and not self.exhaustive:
                break
            if stage.name.startswith("hash.") and confident and not self.exhaustive:
                continue  # an exact copy needs no hash
            if stage.name == "local":
                ordered = sorted([*near.values(), *unsure.values()],
                                 key=lambda m: (m.distance, m.asset_id)) + \
                    sorted(hints.values(), key=lambda m: (-m.confidence, m.asset_id))
                probe.hints = list(dict.fromkeys(
                    m.asset_id for m in ordered if m.asset_id not in confident))
                probe.whole_hints = {m.asset_id for m in ordered
                                     if _covers_query(probe, m.region)}
            found = list(self._indexes[stage.name].query(probe).values())
            if stage.name == "local":
                found = [m for m in (self._judge(probe, m) for m in found) if m is not None]
            decisive = getattr(stage, "decisive", True)
            threshold = getattr(stage, "threshold", None)
            for match in found:
                if not decisive:
                    if self._plausible_hint(probe, match.asset_id):
                        keep_best(hints, match)
                elif match.part_against_part:
                    # Two small parts of two pictures, often near-flat blocks (a flag's field
                    # and a dark scene's corner met at 6 bits on the bench catalog): only a
                    # candidate, which stage 2 verifies or drops.
                    keep_best(unsure, match)
                elif (threshold is not None and stage.name.startswith("hash.")
                      and match.distance > threshold - SIMILAR_BAND_BITS):
                    keep_best(near, match)
                else:
                    keep_best(confident, match)
        if "local" in self._indexes:
            # Windows a confident match already explains are not searched again; the others
            # are (another tile of a collage, another picture of a page may hold another asset).
            explained = [] if self.exhaustive else [m.region for m in confident.values()]
            for match in self._search_windows(probe, [
                    m.asset_id for m in [*near.values(), *unsure.values()]
                    if m.asset_id not in confident], explained=explained):
                keep_best(confident, match)
        for asset_id, match in near.items():
            verified = confident.get(asset_id)
            if verified is None:  # stage 2 could not verify it
                confident[asset_id] = replace(match, kind=MatchKind.similar,
                                              confidence=min(match.confidence, 0.5))
            elif verified.signal in LOCAL_SIGNALS:
                # Verified: the hash's window (a photo box, the trimmed picture) locates it more
                # exactly than the projected outline; the geometry gives kind and inliers.
                confident[asset_id] = replace(
                    match, kind=verified.kind, inliers=verified.inliers,
                    outline=verified.outline,
                    confidence=max(match.confidence, verified.confidence))
        return sorted(confident.values(), key=lambda m: (m.kind == MatchKind.similar,
                                                         -m.confidence, m.asset_id))

    def _gating_indexes(self) -> list[HashIndex]:
        """The hash indexes of signals that gate queries (PDQ)."""
        return [index for index in self._indexes.values()
                if isinstance(index, HashIndex) and index.signal.gates_query]

    def _plausible_hint(self, probe: Probe, asset_id: int) -> bool:
        """False when a gating signal (PDQ) puts every query window more than
        `HINT_MAX_GATE_BITS` from every whole-picture hash of the hinted asset. An asset or a
        query with no usable gating hash (a flat picture) keeps its hint. Art with transparency
        is held to the same rule: its hashes saw it on grey, but a pHash hit means the query's
        picture is mostly the art (right art hints on the wild test: 28-62 bits), and art made
        197 of the 208 wrong hints of the bench's unrelated queries."""
        for index in self._gating_indexes():
            distance = index.nearest_whole(probe, asset_id)
            if distance is not None and distance > HINT_MAX_GATE_BITS:
                return False
        return True

    def _search_windows(self, probe: Probe, hints: list[int],
                        explained: Sequence[Box | None] = ()) -> list[Match]:
        """Stage 2 over each collage cell, photo box and blob of the query on its own (at most
        `MAX_LOCAL_WINDOWS`), regions mapped back to the query's pixels.
        `hints`: assets a hash named near its threshold (verified in every window).
        `explained`: regions (query pixels) of matches found already; a window they cover half
        of or more is skipped (None: a match of the whole query, which explains every window)."""
        if any(region is None for region in explained):
            return []
        # A collage's cells first (a photo box across cells is not a picture of its own),
        # then photo boxes, then blobs; the larger first within each.
        rank = {"tile": 0, "box": 1, "blob": 2}
        ssx, ssy = probe.small_scale
        windows = sorted(
            (w for w in probe.windows if w.label in rank and not any(
                _share_inside((round(w.box[0] * ssx), round(w.box[1] * ssy),
                               round(w.box[2] * ssx), round(w.box[3] * ssy)), region) >= 0.5
                for region in explained if region is not None)),
            key=lambda w: (rank[w.label], -w.box[2] * w.box[3]))[:MAX_LOCAL_WINDOWS]
        found: list[Match] = []
        fx, fy = probe.work.width / probe.small.width, probe.work.height / probe.small.height
        sx, sy = probe.work_scale
        for window in windows:
            x, y, w, h = window.box
            left, top = round(x * fx), round(y * fy)
            part = probe.work.crop((left, top, round((x + w) * fx), round((y + h) * fy)))
            if min(part.size) < 32:
                continue
            small = work_image(part, HASH_SIDE_PX)
            sub = Probe(part, small, (1.0, 1.0),
                        (part.width / small.width, part.height / small.height),
                        hints=list(hints), on_neutral=probe.on_neutral, window=True)
            for match in self._indexes["local"].query(sub).values():
                judged = self._judge(sub, match)
                if judged is None:
                    continue
                match = judged
                if match.region is not None:
                    rx, ry, rw, rh = match.region
                    outline = None if match.outline is None else tuple(
                        round((v + (left if k % 2 == 0 else top)) * (sx if k % 2 == 0 else sy), 1)
                        for k, v in enumerate(match.outline))
                    match = replace(match, region=(round((rx + left) * sx),
                                                   round((ry + top) * sy),
                                                   round(rw * sx), round(rh * sy)),
                                    outline=outline,
                                    transform=f"{match.transform}+{_WHERE[window.label]}")
                found.append(match)
        return found

    def _judge(self, probe: Probe, match: Match) -> Match | None:
        """A geometrically verified match is a `derivative` when the whole asset is in view
        (at least `DERIVATIVE_MIN_COVERAGE` of its projected outline lies inside the query) and
        yet the gating hash (PDQ) of that view, rectified back to the asset's frame by the
        outline (perspective and rotation undone), is not well inside its threshold (more than
        threshold - `SIMILAR_BAND_BITS` bits) from every whole-picture hash of the asset: the
        geometry holds, the content was edited (recoloured, repainted, posterized). Measured:
        copies 4-20 bits; Wesnoth's recoloured variants `fire_ant` of `giant_ant` and
        `marshal-2` of `general` 30; posterized or jittered views 38-86. A partial view (a crop)
        is a copy of a region (a hash of part of a picture says nothing about edits), and so is
        art with transparency seen in a query without transparency (its hashes saw it on grey;
        a view of it over any other background differs).

        A weak fit (`Match.weak_geometry`) stands only with a hash that agrees: the view of the
        whole asset, or a window of the query (the whole picture, its trimmed content: a weak
        fit's homography is too loose to rectify by), within `WEAK_VIEW_MAX_BITS` of the
        asset's whole-picture hash; then it is a derivative, else it is dropped (None)."""
        seen = self._view_distance(probe, match)
        if match.weak_geometry:
            nearest = [d for d in ([seen[0]] if seen else []) + [
                index.nearest_whole(probe, match.asset_id) for index in self._gating_indexes()]
                if d is not None]
            if not nearest or min(nearest) > WEAK_VIEW_MAX_BITS:
                return None
            return replace(match, kind=MatchKind.derivative)
        if seen is not None and seen[0] > seen[1] - SIMILAR_BAND_BITS:
            return replace(match, kind=MatchKind.derivative)
        return match

    def _view_distance(self, probe: Probe, match: Match) -> tuple[int, int] | None:
        """Bits from the gating hash (PDQ) of the asset's view in the query, rectified by the
        match's outline, to the nearest whole-picture hash of the asset, and the signal's
        threshold; None when the view says nothing (part of the asset in view, art with
        transparency over another background, no usable hash)."""
        if match.outline is None or len(match.outline) != 8:
            return None
        sx, sy = probe.work_scale
        quad = np.array([(match.outline[k] / sx, match.outline[k + 1] / sy)
                         for k in range(0, 8, 2)], np.float32)
        outline_area = abs(float(cv2.contourArea(quad)))
        frame = np.array([[0, 0], [probe.work.width, 0],
                          [probe.work.width, probe.work.height], [0, probe.work.height]],
                         np.float32)
        inside, _ = cv2.intersectConvexConvex(quad, frame)
        if outline_area <= 0 or inside < DERIVATIVE_MIN_COVERAGE * outline_area:
            return None
        for index in self._gating_indexes():
            hashes, size, art = index.whole_picture(match.asset_id)
            if art and not probe.on_neutral:
                return None  # its hashes saw it on grey: a view over any background differs
            if not hashes or size is None:
                continue
            ratio = VIEW_SIDE_PX / max(size)
            width, height = max(8, round(size[0] * ratio)), max(8, round(size[1] * ratio))
            target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
            view = cv2.warpPerspective(np.asarray(probe.work),
                                       cv2.getPerspectiveTransform(quad, target),
                                       (width, height), flags=cv2.INTER_AREA,
                                       borderMode=cv2.BORDER_REPLICATE)
            seen = index.signal.compute(Image.fromarray(view))
            if not index.signal.usable(seen):
                return None
            return min(hamming(seen.bits, code) for code in hashes), index.threshold
        return None

    def match_image(self, image: Image.Image, *, sha256: str | None = None,
                    on_neutral: bool = False) -> list[Match]:
        """Catalog assets found in one picture, best first (empty when none). `sha256`: of the
        file's bytes, when known (stage 0). `on_neutral`: the picture's transparency was
        composited on the neutral grey already (`features.decode_visible`)."""
        return self.match_probe(prepare(image, sha256=sha256, on_neutral=on_neutral))

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
                if held is None or _ranks_above(m, held[0]):
                    per_asset[m.asset_id] = (replace(m, time_s=round(frame.time_s, 3)), times)
        out = [replace(m, time_codes=tuple(times)) for m, times in per_asset.values()]
        return sorted(out, key=lambda m: (m.kind == MatchKind.similar, -m.confidence,
                                          m.asset_id))

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
            image, mask = decode_visible(data, name=name, max_bytes=max_bytes,
                                         max_pixels=max_pixels, draft_size=QUERY_DRAFT_SIZE)
            digest = hashlib.sha256(data).hexdigest()
            return MatchResult(name, None, tuple(self.match_image(
                image, sha256=digest, on_neutral=mask is not None)))
        except RegistryError as exc:
            return MatchResult(name, exc.message, ())
        except (OSError, ValueError, cv2.error) as exc:  # decoder trouble past the loader
            return MatchResult(name, f"{name}: cannot process media ({exc})", ())

    def match_files(self, sources: Iterable[Path | str], **kwargs: Any) -> list[MatchResult]:
        return [self.match_file(s, name=str(s), **kwargs) for s in sources]
