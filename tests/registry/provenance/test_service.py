"""Provenance with the catalog and the policies, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from registry.audit import events
from registry.catalog import BlobStore
from registry.errors import InvalidInput, NotFound
from registry.policy import load_policies
from registry.provenance import Permission, StudioKeys, UsePermission
from registry.provenance.service import (
    derive_training,
    ingredient_from_file,
    load_matcher,
    resolve_ingredient,
    sign_generated,
    verify_with_catalog,
)
from tests.factories import make_asset, make_franchise, make_rightsholder
from tests.photos import skimage_photo

POLICY = """\
id: harbor-public
title: What anyone may do with Harbor Lights stills
licensor: Meridian Pictures
licensee: "*"
scope:
  franchises: [Harbor Lights]
grants:
  - use: ai_training
    permission: allowed
  - use: ai_inference
    permission: allowed
  - use: ai_generative_training
    permission: notAllowed
  - use: data_mining
    permission: constrained
    constraint_info: research only
"""


@pytest.fixture
def policies(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "harbor.yaml").write_text(POLICY)
    return load_policies(folder)


@pytest.fixture
def harbor_assets(session: Session, store: BlobStore):  # type: ignore[no-untyped-def]
    holder = make_rightsholder(session, "Meridian Pictures")
    harbor = make_franchise(session, holder, "Harbor Lights")
    return [make_asset(session, store, photo=p, holder=holder, franchise=harbor)
            for p in ("coffee.png", "chelsea.png")]


def test_permissions_come_from_the_policy_decisions_and_the_most_restrictive_wins(
    session: Session, store: BlobStore, policies, harbor_assets  # type: ignore[no-untyped-def]
) -> None:
    derived = derive_training(harbor_assets, policies)
    assert {u: p.permission for u, p in derived.permissions.items()} == {
        "ai_training": Permission.allowed,
        "ai_generative_training": Permission.notAllowed,
        "ai_inference": Permission.allowed,
        "data_mining": Permission.constrained,
    }
    # An asset outside every licence: rights reserved, so every use becomes notAllowed.
    other = make_asset(session, store, photo="astronaut.png",
                       holder=harbor_assets[0].rightsholder)
    derived = derive_training([*harbor_assets, other], policies)
    assert {p.permission for p in derived.permissions.values()} == {Permission.notAllowed}
    assert derive_training([], policies).permissions == {}


def test_sign_with_two_catalog_ingredients_then_verify_links_them_back_to_the_catalog(
    session: Session, store: BlobStore, policies, harbor_assets,  # type: ignore[no-untyped-def]
    studio_keys: StudioKeys,
) -> None:
    ingredients = [resolve_ingredient(session, store, str(a.id)) for a in harbor_assets]
    outcome = sign_generated(session, skimage_photo("rocket.jpg"), keys=studio_keys,
                             model="lumen-2", prompt="harbor at night",
                             ingredients=ingredients, policies=policies)
    assert outcome.warnings == ()
    result = verify_with_catalog(session, outcome.signed.data, anchors_pem=studio_keys.root_pem)
    assert result.state == "valid"
    assert [i["asset_id"] for i in result.ingredients] == [a.id for a in harbor_assets]
    assert all(i["in_catalog"] for i in result.ingredients)
    assert {(m["subject"], m["asset_id"]) for m in result.matches} == {
        ("ingredient[0]", harbor_assets[0].id), ("ingredient[1]", harbor_assets[1].id)}
    assert result.training_mining is not None
    assert result.training_mining.uses["ai_generative_training"].permission == \
        Permission.notAllowed
    assert result.training_mining.uses["data_mining"].permission == Permission.constrained
    audit = events(session, limit=5)
    assert audit[0].action == "provenance.sign"


def test_explicit_permissions_win_and_a_looser_one_is_warned_about(
    session: Session, store: BlobStore, policies, harbor_assets,  # type: ignore[no-untyped-def]
    studio_keys: StudioKeys,
) -> None:
    ingredients = [resolve_ingredient(session, store, harbor_assets[0].sha256)]
    explicit = {"ai_generative_training": UsePermission("ai_generative_training",
                                                        Permission.allowed)}
    outcome = sign_generated(session, skimage_photo("rocket.jpg"), keys=studio_keys,
                             ingredients=ingredients, explicit=explicit, policies=policies)
    assert outcome.signed.training["ai_generative_training"].permission == Permission.allowed
    assert outcome.signed.training["ai_training"].permission == Permission.allowed
    assert "policies of the ingredients say notAllowed" in outcome.warnings[0]


def test_a_file_ingredient_is_linked_to_its_asset_by_sha256_and_an_unknown_one_is_not(
    session: Session, store: BlobStore, harbor_assets, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    copy = tmp_path / "my-copy.png"
    copy.write_bytes(skimage_photo("coffee.png").read_bytes())
    linked = resolve_ingredient(session, store, str(copy))
    assert linked.asset_id == harbor_assets[0].id
    assert linked.match == {"signal": "sha256", "asset_id": harbor_assets[0].id, "distance": 0,
                            "confidence": 1.0}
    unknown = ingredient_from_file(session, skimage_photo("rocket.jpg").read_bytes(),
                                   name="rocket.jpg")
    assert unknown.asset_id is None and unknown.match is None


def test_unknown_ingredients_are_refused_with_the_reason(
    session: Session, store: BlobStore
) -> None:
    with pytest.raises(NotFound):
        resolve_ingredient(session, store, "999999")
    with pytest.raises(InvalidInput, match="not a file, an asset id or a sha256"):
        resolve_ingredient(session, store, "no-such-thing.png")


def test_without_policies_studio_ingredients_reserve_every_use(
    session: Session, store: BlobStore, harbor_assets,  # type: ignore[no-untyped-def]
    studio_keys: StudioKeys,
) -> None:
    ingredients = [resolve_ingredient(session, store, str(harbor_assets[0].id))]
    outcome = sign_generated(session, skimage_photo("rocket.jpg"), keys=studio_keys,
                             ingredients=ingredients, policies=None)
    assert {p.permission for p in outcome.signed.training.values()} == {Permission.notAllowed}


def test_verifying_a_catalog_asset_itself_matches_it_by_sha256(
    session: Session, store: BlobStore, harbor_assets,  # type: ignore[no-untyped-def]
) -> None:
    result = verify_with_catalog(session, skimage_photo("coffee.png"), anchors_pem=None)
    assert result.state == "no_manifest"
    assert result.matches[0]["asset_id"] == harbor_assets[0].id
    assert result.matches[0]["signal"] == "sha256"


def _resized_jpeg(name: str) -> bytes:
    import io

    from PIL import Image

    image = Image.open(skimage_photo(name)).convert("RGB")
    out = io.BytesIO()
    image.resize((image.width * 3 // 4, image.height * 3 // 4)).save(out, "JPEG", quality=80)
    return out.getvalue()


def test_a_changed_copy_of_an_asset_is_linked_by_fingerprint_and_matched_on_verify(
    session: Session, store: BlobStore, harbor_assets, tmp_path: Path,  # type: ignore[no-untyped-def]
    studio_keys: StudioKeys, policies,  # type: ignore[no-untyped-def]
) -> None:
    from registry.fingerprint import fingerprint_new_asset

    for asset in harbor_assets:
        fingerprint_new_asset(session, asset, store.read(asset.sha256))
    matcher = load_matcher(session, index_dir=tmp_path / "index")
    copy = ingredient_from_file(session, _resized_jpeg("chelsea.png"), name="chelsea-small.jpg",
                                matcher=matcher)
    assert copy.asset_id == harbor_assets[1].id
    assert copy.match is not None and copy.match["signal"] != "sha256"
    outcome = sign_generated(session, _resized_jpeg("chelsea.png"), name="gen.jpg",
                             keys=studio_keys, ingredients=[copy], policies=policies)
    result = verify_with_catalog(session, outcome.signed.data, anchors_pem=studio_keys.root_pem,
                                 matcher=matcher)
    subjects = {(m["subject"], m["asset_id"]) for m in result.matches}
    assert ("file", harbor_assets[1].id) in subjects  # the output itself resembles the asset
    assert ("ingredient[0]", harbor_assets[1].id) not in subjects  # its bytes differ
    assert result.ingredients[0]["asset_id"] == harbor_assets[1].id
    assert result.ingredients[0]["linked_by"] == copy.match["signal"]
    assert result.ingredients[0]["in_catalog"] is False
