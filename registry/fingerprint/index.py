"""The on-disk index: faiss binary indexes of the stored hashes, and the keypoint arrays.

Layout under `index_dir` (CLEARHOUSE_HOME/index):
    CURRENT                 name of the live generation (replaced atomically)
    gen-<stamp>/manifest.json   what the generation was built from (the database stamp)
    gen-<stamp>/<signal>.faiss  faiss IndexBinaryFlat of usable hashes (quality >= gate)
    gen-<stamp>/<signal>.npz    per hash: asset id, region code, time code, box
    gen-<stamp>/keys.npz        keypoint sets: owner asset, time, offsets, xy, descriptors
    gen-<stamp>/assets.npz      asset id -> sha256
A generation is written completely before CURRENT points at it, so readers in other processes
never see half an index. It is stale when the database's stamp (row counts and highest ids of
the current signal versions) differs from the manifest's; `ensure_index` then builds a new one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.catalog.models import Asset
from registry.fingerprint.base import SignalType
from registry.fingerprint.keypoints import KEYPOINT_VERSION
from registry.fingerprint.keypoints import KeypointSet as Keys
from registry.fingerprint.models import Fingerprint, KeypointSet
from registry.fingerprint.signals import installed_signal_types

FORMAT_VERSION = 1
_BATCH_ROWS = 50_000


def database_stamp(session: Session) -> dict[str, Any]:
    """What the index must agree with: counts and highest ids of current rows."""
    stamp: dict[str, Any] = {"format": FORMAT_VERSION}
    for signal in installed_signal_types():
        count, top = session.execute(
            select(func.count(Fingerprint.id), func.max(Fingerprint.id)).where(
                Fingerprint.signal == signal.name, Fingerprint.version == signal.version
            )
        ).one()
        stamp[f"{signal.name}.v{signal.version}"] = [int(count), int(top or 0)]
    count, top = session.execute(
        select(func.count(KeypointSet.id), func.max(KeypointSet.id)).where(
            KeypointSet.version == KEYPOINT_VERSION
        )
    ).one()
    stamp[f"keypoints.v{KEYPOINT_VERSION}"] = [int(count), int(top or 0)]
    count, top = session.execute(select(func.count(Asset.id), func.max(Asset.id))).one()
    stamp["assets"] = [int(count), int(top or 0)]
    return stamp


@dataclass
class HashTable:
    """One signal's searchable hashes."""

    signal: type[SignalType]
    index: Any  # faiss.IndexBinaryFlat
    asset_ids: np.ndarray  # int64
    regions: np.ndarray  # int16 code into `region_names`
    region_names: list[str]
    times: np.ndarray  # float32, nan for stills
    boxes: np.ndarray  # (n, 4) int32, x y w h in the asset


@dataclass
class KeyTable:
    """All keypoint sets: one RootSIFT matrix and the slices that belong to each set."""

    asset_ids: np.ndarray  # per set
    times: np.ndarray  # per set, nan for stills
    starts: np.ndarray  # per set, offset into xy/descriptors
    counts: np.ndarray
    sizes: np.ndarray  # per set (width, height)
    xy: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 128) uint8
    owner: np.ndarray  # per descriptor: set number (int32)

    def keys(self, set_no: int) -> Keys:
        a, n = int(self.starts[set_no]), int(self.counts[set_no])
        w, h = (int(v) for v in self.sizes[set_no])
        return Keys(w, h, self.xy[a:a + n], self.descriptors[a:a + n])


@dataclass
class LoadedIndex:
    generation: str
    manifest: dict[str, Any]
    hashes: dict[str, HashTable]
    keys: KeyTable
    sha256: dict[int, str]


def _current(index_dir: Path) -> str | None:
    try:
        name = (index_dir / "CURRENT").read_text().strip()
    except OSError:
        return None
    return name if name and (index_dir / name / "manifest.json").is_file() else None


def is_fresh(session: Session, index_dir: Path) -> bool:
    gen = _current(index_dir)
    if gen is None:
        return False
    manifest = json.loads((index_dir / gen / "manifest.json").read_text())
    return bool(manifest.get("stamp") == database_stamp(session))


def _build_hashes(session: Session, signal: type[SignalType], folder: Path) -> int:
    rows = session.execute(
        select(Fingerprint.asset_id, Fingerprint.region, Fingerprint.hash, Fingerprint.time_s,
               Fingerprint.x, Fingerprint.y, Fingerprint.w, Fingerprint.h)
        .where(Fingerprint.signal == signal.name, Fingerprint.version == signal.version,
               Fingerprint.quality >= signal.quality_threshold)
        .order_by(Fingerprint.id)
        .execution_options(yield_per=_BATCH_ROWS)
    )
    index = faiss.IndexBinaryFlat(signal.bits)
    names: dict[str, int] = {}
    ids: list[int] = []
    regions: list[int] = []
    times: list[float] = []
    boxes: list[tuple[int, int, int, int]] = []
    width = signal.byte_length()
    for part in rows.partitions(_BATCH_ROWS):
        codes = np.frombuffer(b"".join(bytes(r.hash) for r in part), np.uint8)
        index.add(codes.reshape(-1, width))
        for r in part:
            ids.append(r.asset_id)
            regions.append(names.setdefault(r.region, len(names)))
            times.append(np.nan if r.time_s is None else r.time_s)
            boxes.append((r.x or 0, r.y or 0, r.w or 0, r.h or 0))
    faiss.write_index_binary(index, str(folder / f"{signal.name}.faiss"))
    np.savez(folder / f"{signal.name}.npz", asset_ids=np.array(ids, np.int64),
             regions=np.array(regions, np.int16), times=np.array(times, np.float32),
             boxes=np.array(boxes, np.int32).reshape(-1, 4),
             region_names=np.array(list(names), dtype=str))
    return len(ids)


def _build_keys(session: Session, folder: Path) -> int:
    rows = session.execute(
        select(KeypointSet.asset_id, KeypointSet.time_s, KeypointSet.data)
        .where(KeypointSet.version == KEYPOINT_VERSION)
        .order_by(KeypointSet.id)
        .execution_options(yield_per=1000)
    )
    asset_ids, times, starts, counts, sizes = [], [], [], [], []
    xys, descs = [], []
    total = 0
    for r in rows:
        keys = Keys.from_bytes(bytes(r.data))
        asset_ids.append(r.asset_id)
        times.append(np.nan if r.time_s is None else r.time_s)
        starts.append(total)
        counts.append(len(keys))
        sizes.append((keys.width, keys.height))
        xys.append(keys.xy)
        descs.append(keys.descriptors)
        total += len(keys)
    np.savez(
        folder / "keys.npz",
        asset_ids=np.array(asset_ids, np.int64), times=np.array(times, np.float32),
        starts=np.array(starts, np.int64), counts=np.array(counts, np.int64),
        sizes=np.array(sizes, np.int32).reshape(-1, 2),
        xy=np.concatenate(xys) if xys else np.zeros((0, 2), np.float32),
        descriptors=np.concatenate(descs) if descs else np.zeros((0, 128), np.uint8),
    )
    return total


def build_index(session: Session, index_dir: Path) -> str:
    """Write a new generation from the database and make it current; returns its name."""
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = database_stamp(session)
    folder = Path(tempfile.mkdtemp(prefix="gen-", dir=index_dir))
    try:
        counts = {s.name: _build_hashes(session, s, folder) for s in installed_signal_types()}
        counts["keypoints"] = _build_keys(session, folder)
        pairs = session.execute(select(Asset.id, Asset.sha256).order_by(Asset.id)).all()
        np.savez(folder / "assets.npz", ids=np.array([p[0] for p in pairs], np.int64),
                 sha256=np.array([p[1] for p in pairs], dtype="U64"))
        manifest = {"stamp": stamp, "counts": counts,
                    "signals": {s.name: s.version for s in installed_signal_types()}}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
        os.chmod(folder, 0o755)
        pointer = index_dir / f".CURRENT.{os.getpid()}"
        pointer.write_text(folder.name)
        previous = _current(index_dir)
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # Keep the previous generation (a reader may still be loading it); drop older ones.
    for old in index_dir.glob("gen-*"):
        if old.name not in (folder.name, previous):
            shutil.rmtree(old, ignore_errors=True)
    return folder.name


def ensure_index(session: Session, index_dir: Path) -> str:
    """The current generation, rebuilt first when it is missing or stale.

    Builds are serialised across processes with a lock file; a process that waited for the
    lock finds the index another one just built and uses it.
    """
    gen = _current(index_dir)
    if gen is not None and is_fresh(session, index_dir):
        return gen
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            gen = _current(index_dir)
            if gen is not None and is_fresh(session, index_dir):
                return gen
            return build_index(session, index_dir)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_index(index_dir: Path, generation: str | None = None) -> LoadedIndex:
    """Read a generation (the current one by default) without touching the database."""
    gen = generation or _current(index_dir)
    if gen is None:
        raise FileNotFoundError(f"no fingerprint index under {index_dir}")
    folder = index_dir / gen
    manifest = json.loads((folder / "manifest.json").read_text())
    hashes = {}
    for signal in installed_signal_types():
        with np.load(folder / f"{signal.name}.npz") as z:
            hashes[signal.name] = HashTable(
                signal, faiss.read_index_binary(str(folder / f"{signal.name}.faiss")),
                z["asset_ids"], z["regions"], [str(n) for n in z["region_names"]],
                z["times"], z["boxes"],
            )
    with np.load(folder / "keys.npz") as z:
        counts = z["counts"]
        keys = KeyTable(z["asset_ids"], z["times"], z["starts"], counts, z["sizes"], z["xy"],
                        z["descriptors"],
                        np.repeat(np.arange(len(counts), dtype=np.int32), counts))
    with np.load(folder / "assets.npz") as z:
        sha = {int(i): str(s) for i, s in zip(z["ids"], z["sha256"], strict=True)}
    return LoadedIndex(gen, manifest, hashes, keys, sha)
