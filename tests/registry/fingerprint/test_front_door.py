"""The fingerprint package's front door and the value types other areas code against."""

from __future__ import annotations

import dataclasses

import pytest

import registry.fingerprint
from registry.fingerprint import Match, MatchResult


def test_the_package_exports_exactly_its_front_door() -> None:
    assert set(registry.fingerprint.__all__) == {
        "CatalogHit", "Comparison", "Hash", "Match", "MatchKind", "MatchResult", "Matcher",
        "RebuildSummary",
        "SignalType", "build_index", "ensure_index", "fingerprint_new_asset",
        "get_signal_type", "hamming", "installed_signal_types", "is_fresh", "match_paths",
        "rebuild_fingerprints", "weak_assets", "find_in_catalog", "index_status", "sync_index",
        "stale_assets", "weak_reasons",
    }
    for name in registry.fingerprint.__all__:
        assert hasattr(registry.fingerprint, name)


def test_match_and_result_are_frozen_values_with_the_design_json_shape() -> None:
    match = Match(7, "ab" * 32, "pdq", 12, 0.81, (1, 2, 30, 40), None, "crop")
    result = MatchResult("q.jpg", None, (match,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.distance = 3  # type: ignore[misc]
    body = result.as_dict()
    assert list(body) == ["path", "error", "matches"]
    first = body["matches"][0]
    assert {k: first[k] for k in ("asset_id", "asset_sha256", "signal", "distance",
                                  "confidence")} == {
        "asset_id": 7, "asset_sha256": "ab" * 32, "signal": "pdq", "distance": 12,
        "confidence": 0.81}
    assert first["region"] == [1, 2, 30, 40] and first["transform"] == "crop"
    assert first["kind"] == "copy"  # the default; the matcher says derivative or similar
    assert MatchResult("bad.jpg", "bad.jpg: empty file").as_dict() == {
        "path": "bad.jpg", "error": "bad.jpg: empty file", "matches": []}
