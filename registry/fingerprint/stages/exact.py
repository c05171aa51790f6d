"""Stage 0: the exact copy. A file whose sha256 is a catalog asset's is that asset.

`find_in_catalog` is the one lookup the clearance runner, provenance verification and the API
share (the database's unique sha256 index answers it); the Matcher's in-memory version of the same
question is this stage's segments: sorted (id, sha256) arrays, 40 bytes per asset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog.models import Asset
from registry.fingerprint.stages.base import (
    AssetTable,
    Match,
    Probe,
    Stage,
    StageIndex,
    row_range,
)

EXACT_SIGNAL = "sha256"
_LOOKUP_CHUNK = 500  # sha256 values per IN (...) query


@dataclass(frozen=True)
class CatalogHit:
    asset_id: int
    sha256: str

    def as_match(self) -> Match:
        return exact_match(self.asset_id, self.sha256)


def exact_match(asset_id: int, sha256: str) -> Match:
    return Match(asset_id, sha256, EXACT_SIGNAL, 0, 1.0, None, None, "identical")


def find_in_catalog(session: Session, sha256s: Iterable[str]) -> dict[str, CatalogHit]:
    """The catalog assets whose original bytes have these sha256 values (hex), by sha256."""
    wanted = sorted({s.lower() for s in sha256s if s})
    found: dict[str, CatalogHit] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start:start + _LOOKUP_CHUNK]
        for asset_id, sha in session.execute(
                select(Asset.id, Asset.sha256).where(Asset.sha256.in_(chunk))):
            found[sha] = CatalogHit(int(asset_id), sha)
    return found


class _ExactIndex(StageIndex):
    def __init__(self, assets: AssetTable) -> None:
        self.assets = assets

    def query(self, probe: Probe) -> dict[int, Match]:
        if probe.sha256 is None:
            return {}
        asset_id = self.assets.find(probe.sha256)
        if asset_id is None:
            return {}
        return {asset_id: exact_match(asset_id, probe.sha256)}

    def memory_bytes(self) -> int:
        return self.assets.memory_bytes()


class ExactStage(Stage):
    name = "exact"

    def version(self) -> str:
        return "1"

    def rows(self, session: Session, *, upto: int | None = None) -> tuple[int, int]:
        return row_range(session, Asset.id, upto=upto)

    def build_segment(self, session: Session, folder: Path, *, after: int, upto: int) -> int:
        pairs = session.execute(select(Asset.id, Asset.sha256)
                                .where(Asset.id > after, Asset.id <= upto)
                                .order_by(Asset.id)).all()
        ids = np.array([p[0] for p in pairs], np.int64)
        digests = np.array([bytes.fromhex(p[1]) for p in pairs], dtype="S32")
        np.save(folder / "ids.npy", ids)
        np.save(folder / "sha256.npy", digests)
        return len(pairs)

    @staticmethod
    def asset_table(folders: Sequence[Path]) -> AssetTable:
        ids = [np.load(f / "ids.npy") for f in folders]
        digests = [np.load(f / "sha256.npy") for f in folders]
        return AssetTable(np.concatenate(ids) if ids else np.zeros(0, np.int64),
                          np.concatenate(digests) if digests else np.zeros(0, "S32"))

    def load(self, folders: Sequence[Path], assets: AssetTable,
             opened: dict[Path, Any]) -> StageIndex:
        return _ExactIndex(assets)
