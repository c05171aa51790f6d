"""Stage 1: perceptual hashes, one stage (and one index) per installed signal type.

Each `HashStage` indexes its signal's stored hashes of quality >= the signal's gate (8 dihedral
variants per asset, plus the 3x3 windows at 80% and 60% for signals with `hash_windows`). The
query's windows (whole picture, border-trimmed picture, detected photo boxes) are hashed once and
looked up with a range search at the signal's threshold.

Index per segment: `stages/binary.py` (exact flat below 20,000 hashes, IVF above it, multi-index
hashing above 2M; range-search recall at distance <= 31 measured against the exact index in
bench/bench_scale.py).
Exact multi-index hashing (16 substrings of 16 bits, one flipped bit) was measured slower than the
flat index at 10^6 codes (320 against 550 queries/s); 10 substrings of 24 bits with one flipped
bit is exact up to 19 bits and 48x the flat index's speed there. The query probes each window
with its identity and mirror hashes for signals with `query_dihedral` (the catalog already holds
the 8 dihedral hashes of the whole picture): 2 probes per window instead of 8.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.fingerprint.base import DIHEDRAL_NAMES, Hash, SignalType, hamming
from registry.fingerprint.models import Fingerprint
from registry.fingerprint.stages import binary
from registry.fingerprint.stages.base import (
    AssetTable,
    Match,
    Probe,
    Stage,
    StageIndex,
    Window,
    keep_best,
    open_segment,
    row_range,
    time_code,
)

_BATCH_ROWS = 50_000
# The query's variants for signals with `query_dihedral`: as it is, and mirrored (a mirrored crop
# is the usual augmentation; other turns of a crop are rare).
QUERY_VARIANTS = ("identity", "flip_h")
# The inverse of each dihedral variant (to name what the query did to the asset).
_INVERSE = {"rot90": "rot270", "rot270": "rot90"}


def window_hashes(probe: Probe, signal: type[SignalType], window: int) -> list[tuple[str, Hash]]:
    """The signal's probes for one query window, computed once per probe: (variant, hash)."""
    cache: dict[tuple[str, int], list[tuple[str, Hash]]] = probe.__dict__.setdefault(
        "_hashes", {})
    key = (signal.name, window)
    if key not in cache:
        image = probe.windows[window].image
        if signal.query_dihedral:
            variants = dict(zip(DIHEDRAL_NAMES, signal.compute_dihedral(image), strict=True))
            cache[key] = [(name, variants[name]) for name in QUERY_VARIANTS]
        else:
            cache[key] = [("identity", signal.compute(image))]
    return cache[key]


def window_usable(probe: Probe, window: int, gates: Sequence[type[SignalType]]) -> bool:
    """False when a gating signal (PDQ) finds the window too flat to say anything."""
    return all(window_hashes(probe, s, window)[0][1].quality >= s.quality_threshold
               for s in gates)


def hash_confidence(distance: int, threshold: int) -> float:
    return max(0.0, 1.0 - 0.5 * distance / (threshold + 1))


class _Segment:
    def __init__(self, folder: Path) -> None:
        self.index = binary.read(folder / "index.faiss")
        with np.load(folder / "meta.npz") as z:
            self.asset_ids = z["asset_ids"]
            self.regions = z["regions"]
            self.times = z["times"]
            self.boxes = z["boxes"]
        self.region_names: list[str] = json.loads((folder / "regions.json").read_text())
        # Row numbers sorted by asset id, and those ids (sorted on first use).
        self._by_asset: tuple[np.ndarray, np.ndarray] | None = None

    def memory_bytes(self) -> int:
        by_asset = 0 if self._by_asset is None else sum(a.nbytes for a in self._by_asset)
        return int(binary.memory_bytes(self.index) + self.asset_ids.nbytes
                   + self.regions.nbytes + self.times.nbytes + self.boxes.nbytes + by_asset)

    def rows_of(self, asset_id: int) -> np.ndarray:
        """The asset's row numbers, in row order: a binary search in the rows sorted by asset
        (12 bytes a row, sorted on first use), not a scan of every row. The matcher asks for
        each pHash hint (`Matcher._plausible_hint`), and hints grow with the catalog."""
        if self._by_asset is None:
            order = np.argsort(self.asset_ids, kind="stable").astype(np.int32)
            self._by_asset = (order, self.asset_ids[order])
        order, ids = self._by_asset
        lo, hi = np.searchsorted(ids, [asset_id, asset_id + 1])
        return order[lo:hi]


def _code_of(index: Any, row: int) -> bytes:
    """The stored code of one row of a flat, IVF or multi-index-hashing binary index."""
    if isinstance(index, faiss.IndexBinaryMultiHash):
        index = index.storage  # type: ignore[attr-defined]  # its codes: a flat storage
    elif isinstance(index, faiss.IndexBinaryIVF) and index.direct_map.type == 0:  # NoMap
        index.make_direct_map()  # 8 bytes per hash, on first use only
    return bytes(index.reconstruct(row).tobytes())


class HashIndex(StageIndex):
    def __init__(self, signal: type[SignalType], segments: list[_Segment], assets: AssetTable,
                 threshold: int, gates: Sequence[type[SignalType]]) -> None:
        self.signal = signal
        self.segments = segments
        self.assets = assets
        self.threshold = threshold
        self.gates = gates

    def memory_bytes(self) -> int:
        return sum(s.memory_bytes() for s in self.segments)

    def whole_picture(self, asset_id: int) -> tuple[list[bytes], tuple[int, int] | None, bool]:
        """The asset's stored hashes of its whole picture (the dihedral variants; of its first
        frame for a video), its size in pixels, and whether it is art with transparency;
        ([], None, False) when it has none indexed."""
        for segment in self.segments:
            rows = segment.rows_of(asset_id)
            names = [segment.region_names[int(segment.regions[r])] for r in rows]
            full = [int(r) for r, name in zip(rows, names, strict=True)
                    if name.startswith(("full/", "art/"))]
            if full:
                codes = [_code_of(segment.index, r) for r in full]
                _x, _y, w, h = (int(v) for v in segment.boxes[full[0]])
                art = segment.region_names[int(segment.regions[full[0]])].startswith("art/")
                return codes, ((w, h) if w and h else None), art
        return [], None, False

    def nearest_whole(self, probe: Probe, asset_id: int) -> int | None:
        """The least Hamming distance between the query's window probes and the asset's
        whole-picture hashes; None when either side has no usable hash."""
        codes, _size, _art = self.whole_picture(asset_id)
        mine = [bits for _window, _variant, bits in self._probes(probe)]
        if not codes or not mine:
            return None
        return min(hamming(a, b) for a in mine for b in codes)

    def _probes(self, probe: Probe) -> list[tuple[Window, str, bytes]]:
        """(window, variant, hash) of every query window this signal probes: not blobs (they
        are for stage 2 only), not windows a gating signal finds flat."""
        return [(window, variant, h.bits) for i, window in enumerate(probe.windows)
                if window.label != "blob" and window_usable(probe, i, self.gates)
                for variant, h in window_hashes(probe, self.signal, i)]

    def query(self, probe: Probe) -> dict[int, Match]:
        probes = self._probes(probe)
        best: dict[int, Match] = {}
        if not probes:
            return best
        codes = np.frombuffer(b"".join(b for _, _, b in probes), np.uint8).reshape(
            len(probes), -1)
        for segment in self.segments:
            if segment.index.ntotal == 0:
                continue
            # faiss returns distances strictly below the radius.
            lims, dist, ids = segment.index.range_search(codes, self.threshold + 1)
            for qi, (window, variant, _) in enumerate(probes):
                for j in range(lims[qi], lims[qi + 1]):
                    keep_best(best, self._match(segment, int(ids[j]), int(dist[j]), window,
                                                variant, probe.small_scale))
        return best

    def _match(self, segment: _Segment, row: int, d: int, window: Window, variant: str,
               scale: tuple[float, float]) -> Match:
        asset_id = int(segment.asset_ids[row])
        region_name = segment.region_names[int(segment.regions[row])]
        kind, _, stored = region_name.partition("/")
        undone = _INVERSE.get(variant, variant)  # what the query did, seen from the asset
        if kind not in ("full", "art"):
            transform = "crop" if variant == "identity" else f"crop+{undone}"
        elif variant == "identity":
            transform = stored
        elif variant == stored:  # the query turned the same way as the stored variant
            transform = "identity"
        else:
            transform = undone if stored == "identity" else "dihedral"
        if window.label != "full":
            where = {"trim": "padding", "tile": "collage"}.get(window.label, "embedded")
            transform = where if transform == "identity" else f"{transform}+{where}"
        x, y, w, h = window.box
        sx, sy = scale
        t = time_code(float(segment.times[row]))
        return Match(asset_id, self.assets.sha256(asset_id), self.signal.name, d,
                     hash_confidence(d, self.threshold),
                     (round(x * sx), round(y * sy), round(w * sx), round(h * sy)),
                     t, transform, asset_time_s=t,
                     part_against_part=kind not in ("full", "art")
                     and window.label in ("tile", "box", "blob"))


class HashStage(Stage):
    """The index of one signal type's hashes. `decisive` follows the signal's: the Matcher
    turns a non-decisive stage's matches into hints for stage 2."""

    def __init__(self, signal: type[SignalType], *, threshold: int | None = None,
                 gates: Sequence[type[SignalType]] = ()) -> None:
        self.signal = signal
        self.name = f"hash.{signal.name}"  # type: ignore[misc]
        self.threshold = signal.match_threshold if threshold is None else threshold
        self.gates = tuple(gates)
        self.decisive = signal.decisive

    def version(self) -> str:
        return f"{self.signal.version}"

    def _where(self) -> Any:
        return ((Fingerprint.signal == self.signal.name)
                & (Fingerprint.version == self.signal.version)
                & (Fingerprint.quality >= self.signal.quality_threshold))

    def rows(self, session: Session, *, upto: int | None = None) -> tuple[int, int]:
        return row_range(session, Fingerprint.id, self._where(), upto=upto)

    def build_segment(self, session: Session, folder: Path, *, after: int, upto: int) -> int:
        rows = session.execute(
            select(Fingerprint.asset_id, Fingerprint.region, Fingerprint.hash,
                   Fingerprint.time_s, Fingerprint.x, Fingerprint.y, Fingerprint.w,
                   Fingerprint.h)
            .where(self._where(), Fingerprint.id > after, Fingerprint.id <= upto)
            .order_by(Fingerprint.id)
            .execution_options(yield_per=_BATCH_ROWS)
        )
        names: dict[str, int] = {}
        codes: list[bytes] = []
        ids: list[int] = []
        regions: list[int] = []
        times: list[float] = []
        boxes: list[tuple[int, int, int, int]] = []
        for part in rows.partitions(_BATCH_ROWS):
            for r in part:
                codes.append(bytes(r.hash))
                ids.append(r.asset_id)
                regions.append(names.setdefault(r.region, len(names)))
                times.append(np.nan if r.time_s is None else r.time_s)
                boxes.append((r.x or 0, r.y or 0, r.w or 0, r.h or 0))
        width = self.signal.byte_length()
        binary.write(binary.build(np.frombuffer(b"".join(codes), np.uint8).reshape(
            len(codes), width), mih_above=binary.MIH_ABOVE_CODES), folder / "index.faiss")
        np.savez(folder / "meta.npz", asset_ids=np.array(ids, np.int64),
                 regions=np.array(regions, np.int16), times=np.array(times, np.float32),
                 boxes=np.array(boxes, np.int32).reshape(-1, 4))
        (folder / "regions.json").write_text(json.dumps(list(names)))
        return len(ids)

    def load(self, folders: Sequence[Path], assets: AssetTable,
             opened: dict[Path, Any]) -> StageIndex:
        return HashIndex(self.signal, [open_segment(opened, f, _Segment) for f in folders],
                          assets, self.threshold, self.gates)
