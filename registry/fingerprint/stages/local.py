"""Stage 2: local features, for what whole-picture hashes miss (off-centre crops, overlays, small
rotations, pictures inside screenshots, mirrored crops).

Per catalog picture (or video keyframe) the database keeps SIFT keypoints and ORB keypoints of the
picture and of its mirror image (`keypoints.LocalFeatures`). This stage's index per segment:
- every ORB descriptor (orig and mirror, 256 bits) in a binary index (`stages/binary.py`: exact
  flat when small, IVF when large), with the keypoint set each belongs to (4 bytes);
- the verification data (ORB and SIFT coordinates and descriptors) in .npy files opened
  memory-mapped: only the few candidates a query names are ever read.

A query costs one ORB extraction (about 5 ms at 640 px) and one search of its 800 descriptors
(one IVF list each):
they vote (ratio test against the nearest descriptor of another set) for keypoint sets; the
best-voted sets are ranked by how many of their votes one similarity transform explains
(`consistent_votes`, a RANSAC over a few vote pairs), and the `VOTE_CANDIDATES` best are checked
with an ORB RANSAC homography over all their descriptors (about 1 ms each).
At `ORB_ACCEPT_INLIERS` or more the match stands on ORB alone; between `ORB_MIN_INLIERS` and that,
SIFT decides (the query's SIFT is extracted only then, 50-160 ms, and must reach
`keypoints.MIN_INLIERS` = 12 inliers, above SIFT's worst wrong fit of 9). Items that match nothing,
most of a dataset, pay the ORB extraction and the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.fingerprint import keypoints
from registry.fingerprint.keypoints import KEYPOINT_VERSION, KeypointSet, LocalFeatures
from registry.fingerprint.models import KeypointSet as KeypointRow
from registry.fingerprint.stages import binary
from registry.fingerprint.stages.base import (
    AssetTable,
    Match,
    Probe,
    Stage,
    StageIndex,
    keep_best,
    open_segment,
    row_range,
    time_code,
)

LOCAL_VERSION = f"{KEYPOINT_VERSION}.1"
VOTE_NEIGHBOURS = 4
VOTE_CANDIDATES = 3
MAX_HINTS = 3  # assets a non-decisive hash signal named, verified besides the voted sets
MIN_VOTES = 5
# The vote's shortlist, ranked by geometry (`consistent_votes`): the SHORTLIST best-voted sets
# with at least SHORTLIST_MIN_VOTES votes are ordered by how many of their votes one similarity
# transform explains, and the VOTE_CANDIDATES best with at least MIN_CONSISTENT are verified.
# In a large catalog a degraded copy's descriptors find their asset's codes less often (other
# pictures' codes are nearer), so the right asset's 3-4 votes fall behind sets that collect
# more votes by chance, scattered over the picture. Measured with bench/bench_wild_votes.py on
# the wild test's queries against the 10,000-asset bench catalog (130 queries of 5
# transforms): the right asset among the verified sets for 113 by votes alone (3 best with
# >= 5 votes), 117 ranked by geometry; unrelated queries' best set 13.5 votes (median), 8
# consistent ones. With 51,853 fillers the wild test finds 249 of 275 against 246 by votes
# alone (bench/RESULTS.md, eighth round).
SHORTLIST = 30
SHORTLIST_MIN_VOTES = 3
MIN_CONSISTENT = 3
# A window of the query (a photo box, a collage cell; `Probe.window`) is searched only when the
# whole picture found nothing, so most windows are of unrelated pictures: their candidates need
# more votes. Measured on the wild recall test (tests/registry/fingerprint/test_recall_wild.py):
# every window candidate that verified had >= 12 votes (29 of 30 had >= 20), while 346 of the 553
# RANSAC checks of window candidates were spent on candidates with < 12 votes, none verified.
WINDOW_MIN_VOTES = 12
# A window's ORB at 480 px rather than 640: the same recall on the wild test (one more page
# found), the window no more upscaled than needed.
WINDOW_ORB_SIDE_PX = 480
# Hamming distance (of 256 bits) above which an ORB pair is not a correspondence at all.
ORB_MAX_DISTANCE = 64
ORB_MIN_INLIERS = 8  # below this, not even worth asking SIFT
# A query with fewer ORB keypoints than this (small or soft pictures: ORB finds 20 in a 120 px
# thumbnail where SIFT finds 500) has every voted candidate checked by SIFT directly.
ORB_FEW_KEYPOINTS = 150
# ORB's worst wrong fit measured 16 inliers (FIELD-NOTES); re-measured on the 10,000-asset bench
# catalog (bench/bench_scale.py): see bench/RESULTS.md. Above this ORB alone decides.
ORB_ACCEPT_INLIERS = 30
# The ORB index's IVF: about sqrt(n) lists, one list scanned per query descriptor. Measured on
# 2,000 bench assets (1.3M codes, 1,024-4,096 lists): the candidates' recall is the same as the
# exact search's (14 of 20 related queries; the rest are stage 1's), at 14 ms per query against
# 2,977 ms exact (both on a loaded machine); more probes cost more and found nothing more.
ORB_CODES_PER_LIST: int | None = None
ORB_PROBES = 1
# From this many codes (about 5,000 assets) a query descriptor's cost with sqrt(n) lists, every
# centroid plus one list, grows with the square root of the catalog. Above it the centroids go
# in a vocabulary tree (`binary.tree_quantizer`), the lists hold about ORB_TREE_CODES_PER_LIST
# codes, and ORB_TREE_PROBES lists are scanned. Measured on the 10,000-asset bench step's 6.1M
# codes, 40 queries' voted candidates against the exact index's (bench/RESULTS.md, sixth
# round): 32,768 lists in an HNSW graph (the fourth round's rule, segments built before it are
# still read), 8.9 ms per 800-descriptor probe, 18 of 19 candidates kept (build 31.6 s); in a
# tree of 128 cells 5.8 ms, 19 of 19 (11.7 s). Another run (niced, slower throughout): graph
# 13.7 ms, 18 of 19; the tree's rule (512 cells) 5.9 ms, 17 of 19; 128 cells 7.2 ms, 19 of 19.
ORB_TREE_ABOVE_CODES = 4_000_000
ORB_TREE_CODES_PER_LIST = 128
ORB_TREE_PROBES = 4
_ROWS_PER_BATCH = 500


def _sift_confidence(inliers: int) -> float:
    return min(1.0, 0.5 + 0.5 * (inliers - keypoints.MIN_INLIERS + 1) / 40)


def _orb_confidence(inliers: int) -> float:
    return min(1.0, 0.5 + 0.5 * (inliers - ORB_ACCEPT_INLIERS + 1) / 60)


class _NpyAppender:
    """Writes an .npy file of rows appended one array at a time, without holding them: the
    header is written again with the final row count on `close` (an .npy header is padded to
    a fixed size, so it is rewritten in place)."""

    def __init__(self, path: Path, dtype: Any, tail: tuple[int, ...]) -> None:
        self.path, self.dtype, self.tail, self.rows = path, np.dtype(dtype), tail, 0
        self.file = path.open("wb")
        self.data_at = self._header()

    def _header(self) -> int:
        self.file.seek(0)
        np.lib.format.write_array_header_1_0(self.file, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.rows, *self.tail)})
        return self.file.tell()

    def append(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows, self.dtype).reshape(-1, *self.tail).tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        if self._header() != self.data_at:
            raise RuntimeError(f"{self.path}: the .npy header changed size")
        self.file.close()


class _Segment:
    """One segment's ORB index (in memory) and verification data (memory-mapped)."""

    def __init__(self, folder: Path) -> None:
        self.index = binary.read(folder / "index.faiss", probes=ORB_PROBES)
        if binary.coarse_graph(self.index) or binary.coarse_tree(self.index):
            self.index.nprobe = ORB_TREE_PROBES
        self.owner = np.load(folder / "owner.npy")
        with np.load(folder / "sets.npz") as z:
            self.set_row = z["set_row"]
            self.set_mirror = z["set_mirror"]
            self.set_start = z["set_start"]
            self.set_count = z["set_count"]
            self.row_asset = z["row_asset"]
            self.row_time = z["row_time"]
            self.row_size = z["row_size"]
            self.row_sift_start = z["row_sift_start"]
            self.row_sift_count = z["row_sift_count"]
        self.orb_xy = np.load(folder / "orb_xy.npy", mmap_mode="r")
        self.orb_d = np.load(folder / "orb_d.npy", mmap_mode="r")
        self.sift_xy = np.load(folder / "sift_xy.npy", mmap_mode="r")
        self.sift_d = np.load(folder / "sift_d.npy", mmap_mode="r")

    def memory_bytes(self) -> int:
        tables = (self.owner, self.set_row, self.set_mirror, self.set_start, self.set_count,
                  self.row_asset, self.row_time, self.row_size, self.row_sift_start,
                  self.row_sift_count)
        return binary.memory_bytes(self.index) + sum(int(t.nbytes) for t in tables)

    def orb_keys(self, set_no: int) -> KeypointSet:
        a, n = int(self.set_start[set_no]), int(self.set_count[set_no])
        w, h = (int(v) for v in self.row_size[int(self.set_row[set_no])])
        return KeypointSet(w, h, np.array(self.orb_xy[a:a + n]), np.array(self.orb_d[a:a + n]))

    def sift_keys(self, row: int) -> KeypointSet:
        a, n = int(self.row_sift_start[row]), int(self.row_sift_count[row])
        w, h = (int(v) for v in self.row_size[row])
        return KeypointSet(w, h, np.array(self.sift_xy[a:a + n]), np.array(self.sift_d[a:a + n]))

    def shortlist(self, query: KeypointSet, min_votes: int) -> list[_Candidate]:
        """The SHORTLIST best-voted sets with at least `min_votes` votes and MIN_CONSISTENT
        votes that one similarity explains, with their votes and consistent votes."""
        k = min(VOTE_NEIGHBOURS, int(self.index.ntotal))
        dist, ids = self.index.search(query.descriptors, k)
        rows, codes = ratio_pairs(dist, ids, self.owner)
        owners = self.owner[codes]
        votes = np.bincount(owners, minlength=len(self.set_row))
        found: list[_Candidate] = []
        for set_no in np.argsort(-votes, kind="stable")[:SHORTLIST]:
            if votes[set_no] < min_votes:
                break
            mine = np.flatnonzero(owners == set_no)
            order = np.argsort(codes[mine], kind="stable")  # the set's codes, read in order
            consistent = consistent_votes(np.asarray(self.orb_xy[codes[mine][order]]),
                                          query.xy[rows[mine][order]])
            if consistent >= MIN_CONSISTENT:
                found.append(_Candidate(int(votes[set_no]), self, int(set_no), consistent))
        return found


def ratio_pairs(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The votes of a search (`dist`, `ids`: its k columns; `owner`: the set of each code) as
    (query rows, code ids): a descriptor votes for its nearest code when that code is within
    ORB_MAX_DISTANCE and passes the ratio test against the nearest code of another set."""
    owners = owner[np.clip(ids, 0, None)]
    first = owners[:, 0]
    other = np.full(len(first), np.inf, np.float32)
    for col in range(ids.shape[1] - 1, 0, -1):
        differs = (owners[:, col] != first) & (ids[:, col] >= 0)
        other = np.where(differs, dist[:, col], other)
    passed = ((ids[:, 0] >= 0) & (dist[:, 0] <= ORB_MAX_DISTANCE)
              & (dist[:, 0] < keypoints.ORB_RATIO * other))
    rows = np.flatnonzero(passed)
    return rows, ids[rows, 0]


def ratio_votes(dist: np.ndarray, ids: np.ndarray, owner: np.ndarray, sets: int) -> np.ndarray:
    """Votes per keypoint set (`ratio_pairs` counted per set)."""
    _rows, codes = ratio_pairs(dist, ids, owner)
    return np.bincount(owner[codes], minlength=sets)


def consistent_votes(asset_xy: np.ndarray, query_xy: np.ndarray) -> int:
    """How many vote pairs (a set's keypoints, the query's) one similarity transform (rotation,
    uniform scale, shift; RANSAC) takes within `keypoints.GATE_REPROJ_PX` of the query: a
    copy's votes agree on where the asset lies, chance votes are scattered. Any two pairs fit
    one, so fewer than 3 agree by construction."""
    if len(asset_xy) < 3:
        return len(asset_xy)
    model, mask = cv2.estimateAffinePartial2D(
        asset_xy.astype(np.float32), query_xy.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=keypoints.GATE_REPROJ_PX, maxIters=200, confidence=0.99)
    return 0 if model is None or mask is None else int(mask.sum())


def best_voted(votes: np.ndarray, min_votes: int = MIN_VOTES) -> list[int]:
    """The VOTE_CANDIDATES best-voted sets with at least `min_votes`, best first: the rule by
    votes alone, before geometry ranked the shortlist (the ORB index benches compare the
    candidates of two indexes by it)."""
    return [int(s) for s in np.argsort(-votes, kind="stable")[:VOTE_CANDIDATES]
            if votes[s] >= min_votes]


def _ratio_pairs(query: KeypointSet, keys: KeypointSet) -> int:
    """How many query ORB descriptors pass the ratio test against `keys`."""
    if len(query) < 2 or len(keys) < 2:
        return 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query.descriptors, keys.descriptors, k=2)
    return sum(1 for p in pairs if len(p) == 2 and p[0].distance < keypoints.ORB_RATIO
               * p[1].distance)


@dataclass
class _Candidate:
    votes: int
    segment: _Segment
    set_no: int
    consistent: int = 0  # votes one similarity explains (`consistent_votes`)
    hinted: bool = False  # named by a non-decisive hash signal: SIFT checks it even if ORB fails


class _LocalIndex(StageIndex):
    def __init__(self, segments: list[_Segment], assets: AssetTable) -> None:
        self.segments = segments
        self.assets = assets

    def memory_bytes(self) -> int:
        return sum(s.memory_bytes() for s in self.segments)

    def hinted(self, assets: Sequence[int], query: KeypointSet) -> list[_Candidate]:
        """One keypoint set (first frame) per hinted asset: of the picture and its mirror, the
        one more of the query's ORB descriptors pass the ratio test against. Only it is checked
        by SIFT, once: checking both doubled the SIFT extractions that hints cost, and hints
        were 68 of the 72 SIFT checks of 150 unrelated bench queries (bench/RESULTS.md)."""
        found: list[_Candidate] = []
        for asset_id in assets[:MAX_HINTS]:
            for segment in self.segments:
                rows = np.flatnonzero(segment.row_asset == asset_id)[:1]
                if not len(rows):
                    continue
                sets = [int(s) for s in np.flatnonzero(segment.set_row == rows[0])]
                best = max(sets, key=lambda s: (_ratio_pairs(query, segment.orb_keys(s)), -s))
                found.append(_Candidate(0, segment, best, hinted=True))
                break
        return found

    def candidates(self, query: KeypointSet, *, min_votes: int = SHORTLIST_MIN_VOTES
                   ) -> list[_Candidate]:
        """The VOTE_CANDIDATES sets of every segment's shortlist with the most consistent
        votes (then the most votes)."""
        found: list[_Candidate] = []
        for segment in self.segments:
            if segment.index.ntotal == 0:
                continue
            found += segment.shortlist(query, min_votes)
        found.sort(key=lambda c: (-c.consistent, -c.votes))
        return found[:VOTE_CANDIDATES]

    def query(self, probe: Probe) -> dict[int, Match]:
        side = keypoints.ORB_SOFT_QUERY_SIDE_PX if keypoints.is_soft(probe.small) else \
            (WINDOW_ORB_SIDE_PX if probe.window else None)
        query = keypoints.extract_orb(probe.work, query=True, side=side)
        if len(query) < 8:
            return {}
        best: dict[int, Match] = {}
        sift: dict[tuple[bool, bool], tuple[KeypointSet, np.ndarray]] = {}
        voted = self.candidates(query, min_votes=WINDOW_MIN_VOTES if probe.window
                                else SHORTLIST_MIN_VOTES)
        seen = {(id(c.segment), c.set_no) for c in voted}
        extra = [c for c in self.hinted(probe.hints, query)
                 if (id(c.segment), c.set_no) not in seen]
        for cand in voted + extra:
            match = self._verify(probe, query, cand, sift)
            if match is not None:
                keep_best(best, match)
        return best

    def _verify(self, probe: Probe, query: KeypointSet, cand: _Candidate,
                sift: dict[tuple[bool, bool], tuple[KeypointSet, np.ndarray]]
                ) -> Match | None:
        seg, set_no = cand.segment, cand.set_no
        row = int(seg.set_row[set_no])
        mirrored = bool(seg.set_mirror[set_no])
        asset_orb = seg.orb_keys(set_no)
        check = keypoints.verify(query, query.descriptors, asset_orb, asset_orb.descriptors,
                                 binary=True, min_inliers=ORB_MIN_INLIERS)
        if check is None and len(query) >= ORB_FEW_KEYPOINTS and not cand.hinted:
            return None
        strict = None
        if check is None or check.inliers < ORB_ACCEPT_INLIERS:
            # ORB is not sure: SIFT decides (the mirrored case flips the query instead). An
            # asset that a hint says fills the query is checked at the catalog's scale.
            whole = cand.hinted and int(seg.row_asset[row]) in probe.whole_hints
            if (mirrored, whole) not in sift:
                image = probe.work.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored \
                    else probe.work
                keys = keypoints.extract(image, query=not whole)
                sift[(mirrored, whole)] = (keys, keypoints.root_sift(keys.descriptors))
            qsift, qroot = sift[(mirrored, whole)]
            asset_sift = seg.sift_keys(row)
            strict = keypoints.verify(qsift, qroot, asset_sift,
                                      keypoints.root_sift(asset_sift.descriptors))
        if strict is not None:
            signal, inliers, good = "sift", strict.inliers, strict.good
            x, y, w, h = strict.region
            region = (qsift.width - x - w, y, w, h) if mirrored else strict.region
            outline = [(qsift.width - px, py) if mirrored else (px, py)
                       for px, py in strict.outline]
            check = strict
        elif check is None:
            return None
        else:
            # ORB alone; below ORB_ACCEPT_INLIERS (SIFT could not confirm it) a weak fit, which
            # the Matcher keeps only when a PDQ hash of the query (a window, or the asset's
            # rectified view) agrees.
            signal, inliers, good, region = "orb", check.inliers, check.good, check.region
            outline = list(check.outline)
        asset_id = int(seg.row_asset[row])
        x, y, w, h = region
        sx, sy = probe.work_scale
        t = time_code(float(seg.row_time[row]))
        how = f"geometric rot={check.angle_deg:.0f} scale={check.scale:.2f}"
        confidence = _orb_confidence(inliers) if signal == "orb" else _sift_confidence(inliers)
        return Match(asset_id, self.assets.sha256(asset_id), signal,
                     round(1 - inliers / max(good, 1), 3), confidence,
                     (round(x * sx), round(y * sy), round(w * sx), round(h * sy)), t,
                     f"flip_h+{how}" if mirrored else how, asset_time_s=t, inliers=inliers,
                     outline=tuple(round(v * f, 1) for px, py in outline
                                   for v, f in ((px, sx), (py, sy))),
                     weak_geometry=signal == "orb" and inliers < ORB_ACCEPT_INLIERS)


class LocalStage(Stage):
    name = "local"

    def version(self) -> str:
        return LOCAL_VERSION

    def rows(self, session: Session, *, upto: int | None = None) -> tuple[int, int]:
        return row_range(session, KeypointRow.id, KeypointRow.version == KEYPOINT_VERSION,
                         upto=upto)

    def build_segment(self, session: Session, folder: Path, *, after: int, upto: int) -> int:
        rows = session.execute(
            select(KeypointRow.asset_id, KeypointRow.time_s, KeypointRow.data)
            .where(KeypointRow.version == KEYPOINT_VERSION, KeypointRow.id > after,
                   KeypointRow.id <= upto)
            .order_by(KeypointRow.id)
            .execution_options(yield_per=_ROWS_PER_BATCH))
        # Per row and per keypoint set: a few numbers, kept in lists. The keypoint arrays go to
        # their files as the rows are read: a 90,000-asset segment's SIFT descriptors alone are
        # 6.9 GB, which collected in memory and then concatenated took twice that (RESULTS.md).
        t: dict[str, list[Any]] = {name: [] for name in (
            "set_row", "set_mirror", "set_start", "set_count", "row_asset", "row_time",
            "row_size", "row_sift_start", "row_sift_count")}
        arrays = {name: _NpyAppender(folder / f"{name}.npy", dtype, tail) for name, dtype, tail in (
            ("owner", np.int32, ()), ("orb_xy", np.float32, (2,)), ("orb_d", np.uint8, (32,)),
            ("sift_xy", np.float32, (2,)), ("sift_d", np.uint8, (128,)))}
        orb_total = sift_total = 0
        for row_no, r in enumerate(rows):
            feats = LocalFeatures.from_bytes(bytes(r.data))
            t["row_asset"].append(r.asset_id)
            t["row_time"].append(np.nan if r.time_s is None else r.time_s)
            t["row_size"].append((feats.sift.width, feats.sift.height))
            t["row_sift_start"].append(sift_total)
            t["row_sift_count"].append(len(feats.sift))
            arrays["sift_xy"].append(feats.sift.xy)
            arrays["sift_d"].append(feats.sift.descriptors)
            sift_total += len(feats.sift)
            for mirrored, keys in ((False, feats.orb), (True, feats.orb_mirror)):
                arrays["owner"].append(np.full(len(keys), len(t["set_row"]), np.int32))
                t["set_row"].append(row_no)
                t["set_mirror"].append(mirrored)
                t["set_start"].append(orb_total)
                t["set_count"].append(len(keys))
                arrays["orb_xy"].append(keys.xy)
                arrays["orb_d"].append(keys.descriptors)
                orb_total += len(keys)
        for appender in arrays.values():
            appender.close()
        orb_d = np.load(folder / "orb_d.npy", mmap_mode="r")
        tree = orb_total >= ORB_TREE_ABOVE_CODES
        binary.write(binary.build(orb_d, tree=tree, per_list=ORB_TREE_CODES_PER_LIST if tree
                                  else ORB_CODES_PER_LIST), folder / "index.faiss")
        np.savez(folder / "sets.npz",
                 set_row=np.array(t["set_row"], np.int32),
                 set_mirror=np.array(t["set_mirror"], bool),
                 set_start=np.array(t["set_start"], np.int64),
                 set_count=np.array(t["set_count"], np.int32),
                 row_asset=np.array(t["row_asset"], np.int64),
                 row_time=np.array(t["row_time"], np.float32),
                 row_size=np.array(t["row_size"], np.int32).reshape(-1, 2),
                 row_sift_start=np.array(t["row_sift_start"], np.int64),
                 row_sift_count=np.array(t["row_sift_count"], np.int32))
        return len(t["row_asset"])

    def load(self, folders: Sequence[Path], assets: AssetTable,
             opened: dict[Path, Any]) -> StageIndex:
        return _LocalIndex([open_segment(opened, f, _Segment) for f in folders], assets)
