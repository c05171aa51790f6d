"""Consistency of the blob store with the database: what a killed process can leave behind.

A blob is written before its transaction commits (so a crash can leave a file no row names), and a
write killed mid-way leaves its temporary file (`.NAME.xxxx`) in the blob folder. `check_store`
lists both, and the opposite (asset rows whose blob is missing); `remove_orphans` deletes the files
that are older than a grace period (a younger file may belong to an upload still in progress).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog.blobs import BlobStore
from registry.catalog.models import Asset

# A file younger than this may be the blob of a transaction that has not committed yet.
ORPHAN_GRACE_S = 15 * 60


@dataclass
class StoreCheck:
    blobs: int = 0
    orphans: list[Path] = field(default_factory=list)  # files no asset row names
    partial: list[Path] = field(default_factory=list)  # temporary files of killed writes
    missing: list[dict[str, Any]] = field(default_factory=list)  # rows without their blob

    @property
    def ok(self) -> bool:
        return not (self.orphans or self.partial or self.missing)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "blobs": self.blobs,
                "orphans": [str(p) for p in self.orphans],
                "partial_writes": [str(p) for p in self.partial],
                "missing_blobs": self.missing}


def check_store(session: Session, store: BlobStore) -> StoreCheck:
    """Compare the blob folder with the asset rows (reads every row's sha256, no file content)."""
    check = StoreCheck()
    known = set(session.scalars(select(Asset.sha256)))
    seen = set()
    if store.root.exists():
        for path in sorted(store.root.rglob("*")):
            if not path.is_file():
                continue
            if path.name.startswith("."):
                check.partial.append(path)
                continue
            check.blobs += 1
            seen.add(path.name)
            if path.name not in known or path != store.path(path.name):
                check.orphans.append(path)
    for asset_id, sha in session.execute(select(Asset.id, Asset.sha256).order_by(Asset.id)):
        if sha not in seen or not store.exists(sha):
            check.missing.append({"asset_id": asset_id, "sha256": sha})
    return check


def remove_orphans(check: StoreCheck, *, grace_s: float = ORPHAN_GRACE_S) -> list[Path]:
    """Delete the orphan and partial files of `check` older than `grace_s`; returns them."""
    now = time.time()
    removed = []
    for path in [*check.orphans, *check.partial]:
        try:
            if now - path.stat().st_mtime < grace_s:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
