"""registry.provenance exposes exactly its front door (STYLE.md)."""

from __future__ import annotations

import registry.provenance


def test_the_provenance_front_door_is_what_other_areas_code_against() -> None:
    assert set(registry.provenance.__all__) == {
        "CertificateInvalid", "CertificateUntrusted", "IngredientSpec", "Permission",
        "SignedMedia", "SigningFailed", "SigningKeyError", "StudioKeys", "TrainingMining",
        "UsePermission", "VerifyResult", "ensure_studio_keys", "load_signing_keys",
        "rotate_studio_keys", "sign_media", "trust_anchors_pem", "verify_chain", "verify_media",
    }
    for name in registry.provenance.__all__:
        assert hasattr(registry.provenance, name)


def test_provenance_errors_are_provenance_errors_of_the_one_tree() -> None:
    from registry.errors import ProvenanceError

    for name in ("CertificateInvalid", "CertificateUntrusted", "SigningFailed",
                 "SigningKeyError"):
        assert issubclass(getattr(registry.provenance, name), ProvenanceError)
