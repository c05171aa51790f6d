"""Training-mining entries are validated by us: c2pa accepts any content."""

from __future__ import annotations

import pytest

from registry.provenance import sign_media, verify_media
from registry.provenance.training import (
    Permission,
    UsePermission,
    base_label,
    cawg_assertion,
    most_restrictive,
    parse_permission,
    read_training_mining,
)
from tests.photos import skimage_photo


def _assertion(label: str, entries: object) -> dict[str, object]:
    return {"label": label, "data": {"entries": entries}}


def test_unknown_keys_and_unknown_use_values_are_reported_and_not_counted() -> None:
    tm = read_training_mining([_assertion("cawg.training-mining", {
        "cawg.ai_training": {"use": "notAllowed"},
        "bogus.entry": {"use": "allowed"},
        "cawg.ai_inference": {"use": "maybe"},
        "cawg.data_mining": "allowed",
        "com.clearhouse.internal_review": {"use": "constrained", "constraint_info": "legal"},
    })])
    assert tm is not None
    assert set(tm.uses) == {"ai_training"}
    assert tm.uses["ai_training"].permission == Permission.notAllowed
    text = " ".join(tm.problems)
    assert "'bogus.entry'" in text and "'maybe'" in text and "'cawg.data_mining'" in text
    assert len(tm.problems) == 3
    # Our own namespace is read (and shown) but never taken for a standard use.
    assert [e.key for e in tm.entries] == ["cawg.ai_training", "com.clearhouse.internal_review"]


def test_both_label_families_are_read_and_the_most_restrictive_wins() -> None:
    tm = read_training_mining([
        _assertion("c2pa.training-mining", {"c2pa.ai_inference": {"use": "allowed"},
                                            "c2pa.data_mining": {"use": "allowed"}}),
        _assertion("cawg.training-mining", {"cawg.ai_inference": {"use": "notAllowed"},
                                            "cawg.data_mining": {
                                                "use": "constrained",
                                                "constraints_info": "ask licensing"}}),
    ])
    assert tm is not None
    assert tm.uses["ai_inference"].permission == Permission.notAllowed
    assert tm.uses["data_mining"] == UsePermission("data_mining", Permission.constrained,
                                                   "ask licensing")
    effective = tm.as_dict()["effective"]
    assert effective == {"ai_inference": "notAllowed", "data_mining": "notAllowed"}


def test_a_manifest_without_training_assertions_reads_as_none_and_a_broken_one_as_a_problem(
) -> None:
    assert read_training_mining([{"label": "c2pa.actions.v2", "data": {}}]) is None
    tm = read_training_mining([{"label": "cawg.training-mining", "data": {"nope": 1}}])
    assert tm is not None and tm.uses == {} and "no `entries` map" in tm.problems[0]


def test_labels_with_versions_and_instances_are_recognised() -> None:
    assert base_label("cawg.training-mining__2") == "cawg.training-mining"
    assert base_label("c2pa.actions.v2") == "c2pa.actions"
    assert base_label("c2pa.training-mining") == "c2pa.training-mining"


def test_permissions_parse_leniently_and_rank_by_restrictiveness() -> None:
    assert parse_permission("not_allowed") == Permission.notAllowed
    assert parse_permission("Allowed") == Permission.allowed
    with pytest.raises(ValueError, match="unknown permission"):
        parse_permission("maybe")
    worst = most_restrictive([UsePermission("ai_training", Permission.allowed),
                              UsePermission("ai_training", Permission.constrained, "b"),
                              UsePermission("ai_training", Permission.constrained, "a")])
    assert worst == UsePermission("ai_training", Permission.constrained, "a; b")


def test_we_write_the_cawg_entries_map_and_never_the_c2pa_label() -> None:
    written = cawg_assertion({
        "data_mining": UsePermission("data_mining", Permission.constrained, "ask"),
        "ai_training": UsePermission("ai_training", Permission.notAllowed)})
    assert written == {"label": "cawg.training-mining", "data": {"entries": {
        "cawg.ai_training": {"use": "notAllowed"},
        "cawg.data_mining": {"use": "constrained", "constraint_info": "ask"}}}}


def test_a_signed_bogus_training_assertion_verifies_but_its_bad_entries_are_not_trusted(
    studio_keys: object,
) -> None:
    from registry.provenance import c2pa_adapter
    from registry.provenance.sign import build_manifest

    manifest = build_manifest(title="x.jpg", media_type="image/jpeg", model=None, prompt=None,
                              training={})
    manifest["assertions"].append(_assertion("cawg.training-mining",
                                             {"bogus.entry": {"use": "maybe"}}))
    data = c2pa_adapter.sign_bytes(manifest, data=skimage_photo("rocket.jpg").read_bytes(),
                                   media_type="image/jpeg",
                                   chain_pem=studio_keys.chain_pem,  # type: ignore[attr-defined]
                                   key_pem=studio_keys.key_pem,  # type: ignore[attr-defined]
                                   ingredients=[])
    result = verify_media(data, anchors_pem=studio_keys.root_pem)  # type: ignore[attr-defined]
    assert result.state == "valid"  # the library is happy ...
    assert result.training_mining is not None
    assert result.training_mining.uses == {}  # ... we are not
    assert "bogus.entry" in result.training_mining.problems[0]
    assert sign_media  # the public path never writes such entries (see test_sign_verify)
