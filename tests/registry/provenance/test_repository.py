"""The manifest repository and the default reservation, on SQLite and PostgreSQL, with real c2pa
signing of real photos."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import c2pa
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.errors import InvalidInput, NotFound
from registry.policy import load_policies
from registry.provenance import Permission, UsePermission, ensure_studio_keys, rotate_studio_keys
from registry.provenance.c2pa_adapter import read_manifest, reader_settings
from registry.provenance.keys import StudioKeys
from registry.provenance.models import ManifestFingerprint
from registry.provenance.repository import (
    ManifestIndex,
    find_by_binding,
    find_by_content,
    get_manifest_record,
)
from registry.provenance.service import sign_generated, verify_with_catalog
from registry.provenance.softbinding import ISCC_ALG, PDQ_ALG, iscc_value
from tests.factories import make_asset, make_franchise, make_rightsholder
from tests.photos import skimage_photo
from tests.registry.provenance.test_service import POLICY


def _assertions(signed: bytes, media_type: str = "image/png") -> dict[str, object]:
    outcome = read_manifest(signed, media_type, anchors_pem=None)
    store = outcome.store or {}
    manifest = store["manifests"][store["active_manifest"]]
    return {a["label"]: a.get("data") for a in manifest["assertions"]}


def test_every_signed_manifest_is_stored_with_what_it_says(
        session: Session, studio_keys: StudioKeys) -> None:
    outcome = sign_generated(session, skimage_photo("rocket.jpg"), keys=studio_keys,
                             name="rocket.jpg", model="lumen-diffusion-2", prompt="a rocket",
                             actor="partner-key")
    signed = outcome.signed
    record = get_manifest_record(session, str(signed.manifest_label))
    assert record.manifest_id.startswith("urn:c2pa:")
    assert record.signed_sha256 == hashlib.sha256(signed.data).hexdigest()
    assert record.store == signed.store and record.store_sha256 == hashlib.sha256(
        signed.store).hexdigest()
    assert record.studio == "Clearhouse Studio"
    assert record.signer_common_name == "Clearhouse Studio C2PA Signer"
    assert record.signer_serial == f"{studio_keys.signing_cert.serial_number:x}"
    assert record.signed_at is not None and record.actor == "partner-key"
    assert record.actions[0]["action"] == "c2pa.created"
    assert record.actions[0]["softwareAgent"] == "lumen-diffusion-2"
    assert record.iscc is not None and record.iscc.startswith("ISCC:EEA")
    # No catalog ingredient: the studio's reservation, every use notAllowed.
    assert record.training_source == "studio_default"
    assert {u: p["use"] for u, p in record.training_mining.items()} == {
        "ai_training": "notAllowed", "ai_generative_training": "notAllowed",
        "ai_inference": "notAllowed", "data_mining": "notAllowed"}
    algs = session.execute(select(ManifestFingerprint.alg, ManifestFingerprint.region).where(
        ManifestFingerprint.record_id == record.id)).all()
    assert (ISCC_ALG, "full") in algs and (PDQ_ALG, "full") in algs
    assert (PDQ_ALG, "w80/centre") in algs
    # The stored store is the one embedded: validated as a sidecar of the signed file it is
    # Trusted (signature, chain to the studio root, hard binding to these bytes).
    context = c2pa.Context.from_dict(reader_settings(anchors_pem=studio_keys.root_pem))
    with c2pa.Reader("image/jpeg", io.BytesIO(signed.data), record.store,
                     context=context) as reader:
        assert reader.get_validation_state() == "Trusted"
        assert json.loads(reader.json())["active_manifest"] == record.manifest_id


def test_an_output_without_ingredients_carries_the_studio_reservation(
        session: Session, studio_keys: StudioKeys) -> None:
    signed = sign_generated(session, skimage_photo("coffee.png"), keys=studio_keys).signed
    entries = _assertions(signed.data)["cawg.training-mining"]
    assert entries == {"entries": {f"cawg.{u}": {"use": "notAllowed"} for u in (
        "ai_training", "ai_generative_training", "ai_inference", "data_mining")}}
    # verify reads it back as the studio's reservation
    result = verify_with_catalog(session, signed.data, anchors_pem=studio_keys.root_pem)
    assert result.training_mining is not None
    assert result.training_mining.uses["ai_training"].permission == Permission.notAllowed


def test_the_configured_studio_default_and_explicit_permissions_are_signed(
        session: Session, studio_keys: StudioKeys) -> None:
    default = {"ai_inference": UsePermission("ai_inference", Permission.allowed),
               "data_mining": UsePermission("data_mining", Permission.constrained, "ask us")}
    explicit = {"data_mining": UsePermission("data_mining", Permission.notAllowed)}
    outcome = sign_generated(session, skimage_photo("coffee.png"), keys=studio_keys,
                             studio_default=default, explicit=explicit)
    entries = _assertions(outcome.signed.data)["cawg.training-mining"]
    assert entries == {"entries": {"cawg.ai_inference": {"use": "allowed"},
                                   "cawg.data_mining": {"use": "notAllowed"}}}
    record = get_manifest_record(session, str(outcome.signed.manifest_label))
    assert record.training_source == "studio_default+explicit"


def test_opting_out_explicitly_writes_no_training_assertion(
        session: Session, studio_keys: StudioKeys) -> None:
    outcome = sign_generated(session, skimage_photo("coffee.png"), keys=studio_keys,
                             training_mining=False)
    assert "cawg.training-mining" not in _assertions(outcome.signed.data)
    assert any("opted out" in w for w in outcome.warnings)
    record = get_manifest_record(session, str(outcome.signed.manifest_label))
    assert record.training_source == "opted_out" and record.training_mining == {}
    with pytest.raises(InvalidInput, match="opted out"):
        sign_generated(session, skimage_photo("coffee.png"), keys=studio_keys,
                       training_mining=False,
                       explicit={"ai_training": UsePermission("ai_training",
                                                              Permission.allowed)})


def test_catalog_ingredients_give_policy_permissions_in_the_record(
        session: Session, store: BlobStore, studio_keys: StudioKeys, tmp_path: Path) -> None:
    from registry.provenance.service import ingredient_from_asset

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "harbor.yaml").write_text(POLICY)
    holder = make_rightsholder(session, "Meridian Pictures")
    harbor = make_franchise(session, holder, "Harbor Lights")
    asset = make_asset(session, store, photo="chelsea.png", holder=holder, franchise=harbor)
    outcome = sign_generated(session, skimage_photo("coffee.png"), keys=studio_keys,
                             ingredients=[ingredient_from_asset(store, asset)],
                             policies=load_policies(tmp_path / "p"))
    record = get_manifest_record(session, str(outcome.signed.manifest_label))
    assert record.training_source == "policy"
    assert record.training_mining["ai_training"]["use"] == "allowed"
    assert record.training_mining["data_mining"]["use"] == "constrained"
    assert record.ingredients == [{"title": asset.original_name or asset.title,
                                   "relationship": "componentOf", "asset_id": asset.id,
                                   "sha256": asset.sha256, "linked_by": "catalog"}]


def test_records_stay_findable_after_the_signing_key_rotates(
        session: Session, tmp_path: Path) -> None:
    keys = ensure_studio_keys(tmp_path / "keys")
    before = sign_generated(session, skimage_photo("astronaut.png"), keys=keys).signed
    rotated = rotate_studio_keys(tmp_path / "keys")
    assert rotated.signing_cert.serial_number != keys.signing_cert.serial_number
    after = sign_generated(session, skimage_photo("rocket.jpg"), keys=rotated).signed
    index = ManifestIndex()
    old = get_manifest_record(session, str(before.manifest_label))
    assert old.signer_serial == f"{keys.signing_cert.serial_number:x}"
    found = find_by_binding(session, index, alg=ISCC_ALG, value=iscc_value(str(before.iscc)))
    assert found[0].manifest_id == before.manifest_label
    image = Image.open(io.BytesIO(before.data)).convert("RGB")
    assert find_by_content(session, index, before.data, image=image)[0].manifest_id == \
        before.manifest_label
    assert get_manifest_record(session, str(after.manifest_label)).signer_serial == \
        f"{rotated.signing_cert.serial_number:x}"
    # The old manifest still reads with a valid signature chaining to the (unchanged) root.
    context = c2pa.Context.from_dict(reader_settings(anchors_pem=rotated.root_pem))
    with c2pa.Reader("image/png", io.BytesIO(before.data), old.store,
                     context=context) as reader:
        assert reader.get_validation_state() == "Trusted"


def test_an_unknown_manifest_id_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        get_manifest_record(session, "urn:c2pa:00000000-0000-0000-0000-000000000000")
