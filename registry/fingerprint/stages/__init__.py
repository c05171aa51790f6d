"""Matching stages, each owning its index: exact sha256, hash signals, local features."""

from registry.fingerprint.stages.base import (
    AssetTable,
    Match,
    MatchKind,
    Probe,
    Stage,
    StageIndex,
    Window,
)
from registry.fingerprint.stages.exact import CatalogHit, ExactStage, find_in_catalog
from registry.fingerprint.stages.hashes import HashStage
from registry.fingerprint.stages.local import LocalStage

__all__ = ["AssetTable", "CatalogHit", "ExactStage", "HashStage", "LocalStage", "Match",
           "MatchKind", "Probe", "Stage", "StageIndex", "Window", "find_in_catalog"]
