"""Fingerprinting services: hash assets at import, rebuild everything, match batches.

`fingerprint_new_asset` runs inside each file's import transaction (the caller commits);
`rebuild_fingerprints` recomputes every asset from the blob store in a process pool; and
`match_paths` spreads a batch of query files over worker processes, each holding a Matcher.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from registry.catalog.blobs import BlobStore, sha256_bytes
from registry.catalog.importer import ImportOptions, ImportResult, import_file
from registry.catalog.models import Asset
from registry.errors import RegistryError
from registry.fingerprint.features import AssetFeatures, media_features, path_features
from registry.fingerprint.matcher import Matcher, MatchResult
from registry.fingerprint.models import Fingerprint, KeypointSet
from registry.media import Probed, probe
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

# Below this many files a pool costs more to start than it saves.
MIN_PARALLEL_FILES = 4


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def store_features(session: Session, asset_id: int, features: AssetFeatures) -> None:
    """Replace the stored hashes and keypoints of one asset."""
    session.execute(delete(Fingerprint).where(Fingerprint.asset_id == asset_id))
    session.execute(delete(KeypointSet).where(KeypointSet.asset_id == asset_id))
    if features.hashes:
        session.execute(insert(Fingerprint), [
            {"asset_id": asset_id, "signal": h.signal, "version": h.version,
             "region": h.region, "hash": h.bits, "quality": h.quality,
             "x": h.box[0] if h.box else None, "y": h.box[1] if h.box else None,
             "w": h.box[2] if h.box else None, "h": h.box[3] if h.box else None,
             "time_s": h.time_s}
            for h in features.hashes
        ])
    if features.keypoint_sets:
        session.execute(insert(KeypointSet), [
            {"asset_id": asset_id, "version": k.version, "count": len(k.keys.sift),
             "time_s": k.time_s, "data": k.keys.to_bytes()}
            for k in features.keypoint_sets
        ])
    session.flush()


@dataclass(frozen=True)
class Prepared:
    """A file's features and its validation (`Probed`), computed in a worker process ahead of
    its import transaction."""

    features: AssetFeatures
    probed: Probed


def _prepare_job(job: tuple[str, int, int]) -> Prepared | None:
    path, max_bytes, max_pixels = job
    try:
        data = Path(path).read_bytes()
        info = probe(data, name=path, max_bytes=max_bytes, max_pixels=max_pixels)
        features = media_features(data, name=path, kind=info.kind, max_bytes=max_bytes,
                                  max_pixels=max_pixels)
        return Prepared(features, Probed(sha256_bytes(data), info, max_bytes, max_pixels))
    except (RegistryError, OSError):
        return None  # the import itself reports the file's error


def prepare_features(paths: Sequence[Path], *, workers: int | None = None,
                     max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
                     ) -> Iterator[Prepared | None]:
    """Features and validation of each file, in order, computed in worker processes (a bulk
    import's fingerprinting and decoding, ahead of its one-file transactions: pass `probed` to
    `import_file` and `features` to `store_prepared_features`); None where a file could not be
    fingerprinted (the import then reports why, or computes it in line)."""
    jobs = [(str(p), max_bytes, max_pixels) for p in paths]
    count = workers or default_workers()
    if count <= 1 or len(jobs) < MIN_PARALLEL_FILES:
        yield from map(_prepare_job, jobs)
        return
    with ProcessPoolExecutor(count, mp_context=get_context("spawn"),
                             initializer=_quiet_threads) as pool:
        yield from pool.map(_prepare_job, jobs, chunksize=4)


def store_prepared_features(session: Session, asset: Asset, data: bytes, *,
                            features: AssetFeatures | None) -> None:
    """`fingerprint_new_asset` with the features computed ahead (by `prepare_features`)."""
    if features is None:
        fingerprint_new_asset(session, asset, data)
    else:
        store_features(session, asset.id, features)


def import_prepared(factory: sessionmaker[Session], store: BlobStore, path: Path,
                    options: ImportOptions, ready: Prepared | None) -> ImportResult:
    """Import one file (`import_file`) with what a worker prepared for it (`prepare_features`):
    its features and its validation; None: both computed in the file's transaction."""
    hook = partial(store_prepared_features, features=ready.features if ready else None)
    return import_file(factory, store, path, options, hook,
                       probed=ready.probed if ready else None)


def fingerprint_new_asset(session: Session, asset: Asset, data: bytes) -> None:
    """Hash a newly registered asset inside its import transaction.

    Raises the media errors (CorruptMedia, ...) if the bytes cannot be hashed, so the import of
    that file rolls back rather than registering an asset nobody can find.
    """
    features = media_features(data, name=asset.original_name or asset.sha256, kind=asset.kind,
                              max_bytes=max(len(data), 1))
    store_features(session, asset.id, features)


@dataclass
class RebuildSummary:
    assets: int = 0
    hashes: int = 0
    keypoints: int = 0
    weak: list[int] = field(default_factory=list)  # asset ids with nothing robust to match on
    errors: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"assets": self.assets, "hashes": self.hashes, "keypoints": self.keypoints,
                "weak": self.weak,
                "errors": [{"asset_id": a, "error": e} for a, e in self.errors]}


def _features_job(job: tuple[int, str, str]) -> tuple[int, AssetFeatures | str]:
    asset_id, path, kind = job
    try:
        return asset_id, path_features(path, kind)
    except RegistryError as exc:
        return asset_id, exc.message
    except OSError as exc:
        return asset_id, f"{path}: cannot read blob ({exc.strerror})"


def _compute_all(jobs: Sequence[tuple[int, str, str]], workers: int
                 ) -> Iterator[tuple[int, AssetFeatures | str]]:
    if workers <= 1 or len(jobs) < MIN_PARALLEL_FILES:
        yield from map(_features_job, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_quiet_threads) as pool:
        yield from pool.map(_features_job, jobs, chunksize=4)


def rebuild_fingerprints(
    session: Session,
    *,
    store: BlobStore,
    on_progress: Callable[[int, int], None] | None = None,
    only_missing: bool = False,
    workers: int | None = None,
) -> RebuildSummary:
    """Recompute the hashes and keypoints of every asset (or of those without any) from the
    blob store, in a process pool. `on_progress(done, total)` is called after each asset."""
    query = select(Asset.id, Asset.sha256, Asset.kind).order_by(Asset.id)
    if only_missing:
        query = query.where(~Asset.id.in_(select(Fingerprint.asset_id)))
    rows = session.execute(query).all()
    jobs = [(r.id, str(store.path(r.sha256)), r.kind) for r in rows]
    summary = RebuildSummary()
    for done, (asset_id, result) in enumerate(
        _compute_all(jobs, workers or default_workers()), start=1
    ):
        if isinstance(result, str):
            summary.errors.append((asset_id, result))
        else:
            store_features(session, asset_id, result)
            summary.assets += 1
            summary.hashes += len(result.hashes)
            summary.keypoints += sum(len(k.keys.sift) for k in result.keypoint_sets)
            if result.weak:
                summary.weak.append(asset_id)
        if on_progress is not None:
            on_progress(done, len(jobs))
    return summary


def weak_assets(session: Session) -> list[int]:
    """Assets with nothing robust to match on (flat pictures, bare art): the ids of
    `protection.weak_reasons`."""
    from registry.fingerprint.protection import weak_reasons

    return sorted(weak_reasons(session))


# --- batch matching in worker processes ------------------------------------------------------

_WORKER_MATCHER: Matcher | None = None


def _quiet_threads() -> None:
    # One process per core: keep each one single-threaded.
    import cv2
    import faiss

    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)


def _init_worker(matcher: Matcher) -> None:
    global _WORKER_MATCHER
    _quiet_threads()
    _WORKER_MATCHER = matcher


def _match_job(job: tuple[str, int, int]) -> MatchResult:
    path, max_bytes, max_pixels = job
    assert _WORKER_MATCHER is not None
    return _WORKER_MATCHER.match_file(Path(path), name=path, max_bytes=max_bytes,
                                      max_pixels=max_pixels)


def match_paths(
    matcher: Matcher,
    paths: Iterable[Path],
    *,
    workers: int | None = None,
    max_bytes: int = 50 * 1024 * 1024,
    max_pixels: int = 100_000_000,
) -> Iterator[MatchResult]:
    """Match files in order, in worker processes (each loads the matcher's index from disk)."""
    jobs = [(str(p), max_bytes, max_pixels) for p in paths]
    count = workers or default_workers()
    if count <= 1 or len(jobs) < MIN_PARALLEL_FILES:
        for path, mb, mp in jobs:
            yield matcher.match_file(Path(path), name=path, max_bytes=mb, max_pixels=mp)
        return
    with ProcessPoolExecutor(count, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(matcher,)) as pool:
        yield from pool.map(_match_job, jobs, chunksize=2)
