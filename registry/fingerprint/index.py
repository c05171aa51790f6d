"""The on-disk index: each stage's segments, and the manifest that lists them.

Layout under `index_dir` (CLEARHOUSE_HOME/index):
    manifest.json           format, serial, and per stage: its version and segments, each with
                            the id range of the rows it holds (replaced atomically)
    seg/<stage>-<n>/        one segment of one stage (written completely before the manifest
                            names it, never changed afterwards)
    .lock                   serialises writers across processes

`sync_index` brings the index up to the database: for each stage it appends one segment with the
rows added since its last segment (an import costs the next sync a small segment, not a rebuild).
Segments at the end that are smaller than what is appended after them are merged with it (sizes
never grow along the list: each segment costs a query one probe, and a catalog of 1,000 assets
that grew to 100,000 would otherwise keep probing its first 1,000 on their own), as are all but the
first when there are more than `MAX_DELTA_SEGMENTS` after it. A stage is rebuilt from scratch only
when its version changed or rows it indexed disappeared (assets deleted, fingerprints
recomputed). `clearhouse fingerprint reindex` rebuilds every stage on purpose (maintenance: the
IVF lists are sized for the catalog at build time). Readers in other processes never see half a
segment: they read the manifest, and segments named by the current or the previous manifest are
kept on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from registry.fingerprint.signals import installed_signal_types
from registry.fingerprint.stages.base import Stage
from registry.fingerprint.stages.exact import ExactStage
from registry.fingerprint.stages.hashes import HashStage
from registry.fingerprint.stages.local import LocalStage

FORMAT_VERSION = 2
MAX_DELTA_SEGMENTS = 8
MANIFEST = "manifest.json"


def default_stages(*, max_distance: int | None = None) -> list[Stage]:
    """Stage 0 (exact sha256), stage 1 (one hash stage per installed signal type, in
    registration order; `max_distance` overrides PDQ-like signals' threshold), stage 2 (local
    features)."""
    gates = [s for s in installed_signal_types() if s.gates_query]
    hashes: list[Stage] = [
        HashStage(s, threshold=max_distance if (max_distance is not None and s.gates_query)
                  else None, gates=gates)
        for s in installed_signal_types()]
    return [ExactStage(), *hashes, LocalStage()]


@dataclass(frozen=True)
class SegmentInfo:
    dir: str
    after: int
    upto: int
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"dir": self.dir, "after": self.after, "upto": self.upto, "rows": self.rows}


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((index_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        return None
    return data


def segments_of(manifest: dict[str, Any], stage: str) -> list[SegmentInfo]:
    entry = manifest.get("stages", {}).get(stage) or {}
    return [SegmentInfo(**s) for s in entry.get("segments", [])]


@contextlib.contextmanager
def _locked(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_segment(session: Session, stage: Stage, index_dir: Path, *, after: int,
                   upto: int) -> SegmentInfo:
    root = index_dir / "seg"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{stage.name}-", dir=root))
    try:
        rows = stage.build_segment(session, folder, after=after, upto=upto)
        os.chmod(folder, 0o755)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return SegmentInfo(f"seg/{folder.name}", after, upto, rows)


def _plan(session: Session, stage: Stage, index_dir: Path, held: list[SegmentInfo],
          version: str | None, rebuild: bool) -> list[SegmentInfo] | None:
    """The stage's new segment list, or None when it is already current."""
    count, top = stage.rows(session)
    if rebuild or version != stage.version() or not held:
        return [_write_segment(session, stage, index_dir, after=0, upto=top)]
    upto = held[-1].upto
    indexed = sum(s.rows for s in held)
    if stage.rows(session, upto=upto)[0] != indexed:
        # Rows it indexed are gone or were replaced: rebuild this stage.
        return [_write_segment(session, stage, index_dir, after=0, upto=top)]
    if top <= upto:
        # Nothing new; an index written before the merge rule still gets its sizes in order.
        keep = _kept(held[:-1], held[-1].rows)
        if len(keep) == len(held) - 1:
            return None
    else:
        keep = _kept(held, count - indexed)
    return [*keep, _write_segment(session, stage, index_dir,
                                  after=keep[-1].upto if keep else 0, upto=top)]


def _kept(held: list[SegmentInfo], new_rows: int) -> list[SegmentInfo]:
    """Which of the `held` segments stay as they are when `new_rows` rows are appended; the
    rest are merged with the new rows into one segment. Merged: the segments at the end that
    hold fewer rows than everything after them, so that sizes never grow along the list (a
    query pays one probe per segment, and a small first segment would otherwise stay a probe of
    its own however large the catalog grows); and, past `MAX_DELTA_SEGMENTS` after the first
    one, every segment after the first. So a sync writes the new rows plus at most about as
    many again, never a rebuild of a segment larger than what was added."""
    start = len(held)
    tail = new_rows
    while start > 0 and held[start - 1].rows < tail:
        start -= 1
        tail += held[start].rows
    if start > MAX_DELTA_SEGMENTS:
        start = 1
    return held[:start]


def sync_index(session: Session, index_dir: Path, *, stages: Sequence[Stage] | None = None,
               rebuild: bool = False) -> dict[str, Any]:
    """Bring the index up to the database (append, merge or rebuild per stage, as above) and
    return the current manifest. Safe to call from many processes at once."""
    stages = list(stages) if stages is not None else default_stages()
    # Stage 0 goes last, so every asset another stage names is in its asset table.
    ordered = [s for s in stages if s.name != ExactStage.name] + \
        [s for s in stages if s.name == ExactStage.name]
    with _locked(index_dir):
        previous = read_manifest(index_dir)
        manifest: dict[str, Any] = previous or {"format": FORMAT_VERSION, "serial": 0,
                                                 "stages": {}}
        changed = False
        for stage in ordered:
            entry = manifest["stages"].get(stage.name) or {}
            planned = _plan(session, stage, index_dir, segments_of(manifest, stage.name),
                            entry.get("version"), rebuild)
            if planned is not None:
                manifest["stages"][stage.name] = {
                    "version": stage.version(), "segments": [s.as_dict() for s in planned]}
                changed = True
        if changed or previous is None:
            manifest["serial"] = int(manifest.get("serial", 0)) + 1
            pointer = index_dir / f".{MANIFEST}.{os.getpid()}"
            pointer.write_text(json.dumps(manifest, indent=1))
            old = json.loads((index_dir / MANIFEST).read_text()) if previous else None
            os.replace(pointer, index_dir / MANIFEST)
            _collect(index_dir, [manifest, old])
        return manifest


def _collect(index_dir: Path, keep: list[dict[str, Any] | None]) -> None:
    """Delete segment folders no manifest in `keep` names (a reader may still hold the previous
    manifest's)."""
    named = {s["dir"] for m in keep if m for entry in m.get("stages", {}).values()
             for s in entry.get("segments", [])}
    for folder in (index_dir / "seg").glob("*"):
        if f"seg/{folder.name}" not in named:
            shutil.rmtree(folder, ignore_errors=True)


def is_fresh(session: Session, index_dir: Path) -> bool:
    """True when the index holds every row of the database (nothing to append or rebuild)."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return False
    for stage in default_stages():
        entry = manifest["stages"].get(stage.name)
        held = segments_of(manifest, stage.name)
        if entry is None or entry.get("version") != stage.version() or not held:
            return False
        count, top = stage.rows(session)
        if top != held[-1].upto or count != sum(s.rows for s in held):
            return False
    return True


def ensure_index(session: Session, index_dir: Path) -> str:
    """Sync the index with the database; returns its generation (the manifest's serial)."""
    return str(sync_index(session, index_dir)["serial"])


def build_index(session: Session, index_dir: Path) -> str:
    """Rebuild every stage from scratch (maintenance); returns the new generation."""
    return str(sync_index(session, index_dir, rebuild=True)["serial"])


def index_status(session: Session, index_dir: Path) -> dict[str, Any]:
    """Per stage: segments, rows indexed, and rows in the database."""
    manifest = read_manifest(index_dir)
    out: dict[str, Any] = {"index_dir": str(index_dir),
                           "generation": str(manifest["serial"]) if manifest else None,
                           "fresh": is_fresh(session, index_dir), "stages": {}}
    for stage in default_stages():
        held = segments_of(manifest, stage.name) if manifest else []
        count, _top = stage.rows(session)
        out["stages"][stage.name] = {"segments": len(held),
                                     "indexed": sum(s.rows for s in held),
                                     "database": count}
    return out
