"""Fingerprints: compute, store, index and match content signatures.

Matching is a pipeline of stages, each owning its index (`stages/`): exact sha256, one hash
stage per signal type (PDQ, pHash), local features (ORB candidates, SIFT verification).
`Matcher` runs them and answers "which of our assets are in this picture or video?".
"""

from registry.fingerprint.base import Comparison, Hash, SignalType, hamming
from registry.fingerprint.index import (
    build_index,
    ensure_index,
    index_status,
    is_fresh,
    sync_index,
)
from registry.fingerprint.matcher import Matcher, MatchResult
from registry.fingerprint.protection import stale_assets, weak_reasons
from registry.fingerprint.service import (
    RebuildSummary,
    fingerprint_new_asset,
    match_paths,
    rebuild_fingerprints,
    weak_assets,
)
from registry.fingerprint.signals import get_signal_type, installed_signal_types
from registry.fingerprint.stages import CatalogHit, Match, MatchKind, find_in_catalog

__all__ = [
    "CatalogHit",
    "Comparison",
    "Hash",
    "Match",
    "MatchKind",
    "MatchResult",
    "Matcher",
    "RebuildSummary",
    "SignalType",
    "build_index",
    "ensure_index",
    "find_in_catalog",
    "fingerprint_new_asset",
    "get_signal_type",
    "hamming",
    "index_status",
    "installed_signal_types",
    "is_fresh",
    "match_paths",
    "rebuild_fingerprints",
    "stale_assets",
    "sync_index",
    "weak_assets",
    "weak_reasons",
]
