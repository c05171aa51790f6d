"""The stage protocol: each matching stage owns its index, built from database rows in segments.

A stage (ThreatExchange's `SignalType` + `SignalTypeIndex` split, one level up) knows:
- which rows of the database it indexes and how far they go (`rows`: count and highest id);
- how to write one **segment** of its index from the rows in an id range (`build_segment`);
  segments only ever append: new assets land in a new small segment, and a full rebuild of a
  stage is a maintenance step (`clearhouse fingerprint reindex`), or happens when the stage's
  version changes or rows it indexed disappeared;
- its **stamp** (`version`): bumped whenever what it writes changes, so stale segments are rebuilt;
- how to open its segments into a searchable, in-memory `StageIndex` whose `query` takes the
  query picture prepared once (`Probe`) and returns matches per asset.
The `Matcher` runs the stages in order and merges what they find.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.fingerprint.regions import Box


class MatchKind(StrEnum):
    """What a match says about the query's content (issue 11).

    copy: the asset itself: the same file, a PDQ hash well inside its threshold, or a region the
      local-feature stage verified geometrically (crops, mirrors, rotations, overlays, art pasted
      over a new background, a picture inside a page or collage);
    derivative: a verified region of an edited version: the geometry holds, but the hash of
      the whole asset's view, rectified by the verified outline, is not well inside the
      threshold from the asset's own (recoloured, repainted, posterized);
    similar: a PDQ hash near its threshold that the local-feature stage could not verify. Policy
      decisions apply to copies and derivatives; a similar match always goes to review.
    """

    copy = "copy"
    derivative = "derivative"
    similar = "similar"


@dataclass(frozen=True)
class Match:
    """One catalog asset found in a query.

    distance: Hamming bits for hash signals (lower is closer); for "sift" and "orb", the share of
    ratio-test matches that RANSAC rejected (0..1); 0 for "sha256". region: x, y, w, h in the
    query's pixels. time_s: the query's time code for a video query, else the asset frame's time
    for a video asset. transform: what the query did to the asset, where the signal tells (e.g.
    "rot90", "crop", "padding", "geometric rot=5 scale=0.50").
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
    kind: MatchKind = MatchKind.copy
    # Local features: the asset's corners (top-left, top-right, bottom-right, bottom-left of the
    # asset, or of its mirror image for a mirrored copy) in the query's pixels, as x0, y0, ...
    # x3, y3; not clipped to the query (a crop's outline reaches beyond it).
    outline: tuple[float, ...] | None = None
    # A hash hit between a part of the query (a collage cell, a photo box or blob) and a crop
    # window of the asset (`Matcher` lets such a hit only name a candidate for stage 2).
    part_against_part: bool = field(default=False, compare=False)
    # A weak geometric fit: ORB held with too few inliers to stand alone and SIFT could not
    # confirm it (a posterized or edge-enhanced copy keeps some ORB corners and few SIFT blobs).
    # `Matcher` keeps it only when a PDQ hash of the query (a window, or the asset's view
    # rectified by the fit) agrees, as a derivative, and drops it otherwise.
    weak_geometry: bool = field(default=False, compare=False)

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
            "kind": str(self.kind),
            "outline": list(self.outline) if self.outline is not None else None,
        }


@dataclass
class Window:
    """One view of the query that the hash stage probes."""

    # "full", "trim" (uniform borders removed), "box" (a photo on a canvas), "tile" (a cell
    # of a collage) or "blob" (a block on a page that is not a rectangle: stage 2 only)
    label: str
    box: Box  # in the small (hash) image
    image: Image.Image


@dataclass
class Probe:
    """A query picture, prepared once for every stage.

    work: the picture at <= 1024 px (local features); small: at <= 512 px (hashes). The scale
    pairs map their pixels back to the query's own (matches report regions in those).
    """

    work: Image.Image
    small: Image.Image
    work_scale: tuple[float, float]
    small_scale: tuple[float, float]
    sha256: str | None = None
    windows: list[Window] = field(default_factory=list)
    # Assets that a non-decisive signal (pHash) named: stage 2 verifies them too.
    hints: list[int] = field(default_factory=list)
    # Those of `hints` named by a window covering most of the query (the whole picture, its
    # trimmed content): the asset fills the query, so SIFT checks it at the catalog's scale.
    whole_hints: set[int] = field(default_factory=set)
    # The query carried transparency and was composited on the neutral grey the catalog's art
    # was hashed on (so its hashes compare with the art's).
    on_neutral: bool = False
    # A window of a larger query (a photo box, a collage cell) searched on its own.
    window: bool = False


def time_code(value: float) -> float | None:
    """A stored frame time (NaN for stills) as a match reports it."""
    return None if np.isnan(value) else round(float(value), 3)


def keep_best(into: dict[int, Match], match: Match) -> None:
    """Keep the more confident match per asset."""
    held = into.get(match.asset_id)
    if held is None or match.confidence > held.confidence:
        into[match.asset_id] = match


class StageIndex(abc.ABC):
    """A stage's loaded segments, searchable."""

    @abc.abstractmethod
    def query(self, probe: Probe) -> dict[int, Match]:
        """Catalog assets this stage finds in the probe (best match per asset)."""

    @abc.abstractmethod
    def memory_bytes(self) -> int:
        """Bytes held in memory (indexes and tables; memory-mapped verification data excluded)."""


class Stage(abc.ABC):
    """One matching stage: which rows it indexes, how it writes and opens segments."""

    name: ClassVar[str]

    @abc.abstractmethod
    def version(self) -> str:
        """The stamp of what `build_segment` writes (a change forces a rebuild)."""

    @abc.abstractmethod
    def rows(self, session: Session, *, upto: int | None = None) -> tuple[int, int]:
        """(count, highest id) of the rows this stage indexes (ids <= `upto` when given)."""

    @abc.abstractmethod
    def build_segment(self, session: Session, folder: Path, *, after: int, upto: int) -> int:
        """Write the index of rows with `after < id <= upto` into `folder`; returns their count."""

    @abc.abstractmethod
    def load(self, folders: Sequence[Path], assets: AssetTable,
             opened: dict[Path, Any]) -> StageIndex:
        """Open the segments (oldest first) into one searchable index. `opened`: segments
        already in memory by folder (reused, and the new ones recorded), so a refresh after an
        append reads only the new segment."""


def row_range(session: Session, id_column: Any, *conditions: Any,
              upto: int | None = None) -> tuple[int, int]:
    """(count, highest id) of the rows matching `conditions` (ids <= `upto` when given): what a
    stage's `rows` answers."""
    query = select(func.count(id_column), func.max(id_column)).where(*conditions)
    if upto is not None:
        query = query.where(id_column <= upto)
    count, top = session.execute(query).one()
    return int(count), int(top or 0)


def open_segment(opened: dict[Path, Any], folder: Path, factory: Callable[[Path], Any]) -> Any:
    if folder not in opened:
        opened[folder] = factory(folder)
    return opened[folder]


class AssetTable:
    """Asset id <-> sha256 over every exact-stage segment: sorted arrays, 40 bytes per asset."""

    def __init__(self, ids: np.ndarray, digests: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order].astype(np.int64)
        self.digests = digests[order]  # 'S32' raw sha256
        by_digest = np.argsort(self.digests, kind="stable")
        self._sorted_digests = self.digests[by_digest]
        self._digest_ids = self.ids[by_digest]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def sha256(self, asset_id: int) -> str:
        at = int(np.searchsorted(self.ids, asset_id))
        if at < len(self.ids) and int(self.ids[at]) == asset_id:
            return bytes(self.digests[at]).hex()
        return ""

    def find(self, sha256_hex: str) -> int | None:
        try:
            key = np.array(bytes.fromhex(sha256_hex), dtype="S32")
        except ValueError:
            return None
        at = int(np.searchsorted(self._sorted_digests, key))
        if at < len(self._sorted_digests) and self._sorted_digests[at] == key:
            return int(self._digest_ids[at])
        return None

    def memory_bytes(self) -> int:
        return int(self.ids.nbytes * 2 + self.digests.nbytes * 2)
