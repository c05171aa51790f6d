"""Fingerprints: compute, store, index and match content signatures.

Signals (PDQ, pHash) hash many regions of each catalog asset; SIFT keypoints verify the hard
cases. `Matcher` answers "which of our assets are in this picture or video?".
"""

from registry.fingerprint.base import Comparison, Hash, SignalType, hamming
from registry.fingerprint.index import build_index, ensure_index, is_fresh
from registry.fingerprint.matcher import Match, Matcher, MatchResult
from registry.fingerprint.service import (
    RebuildSummary,
    fingerprint_new_asset,
    match_paths,
    rebuild_fingerprints,
    weak_assets,
)
from registry.fingerprint.signals import get_signal_type, installed_signal_types

__all__ = [
    "Comparison",
    "Hash",
    "Match",
    "MatchResult",
    "Matcher",
    "RebuildSummary",
    "SignalType",
    "build_index",
    "ensure_index",
    "fingerprint_new_asset",
    "get_signal_type",
    "hamming",
    "installed_signal_types",
    "is_fresh",
    "match_paths",
    "rebuild_fingerprints",
    "weak_assets",
]
