"""Provenance: the studio's signing keys and trust anchors, C2PA signing and offline verification.

Front door for the rest of the registry; the c2pa-python calls live in c2pa_adapter.py only.
"""

from registry.provenance.errors import (
    CertificateInvalid,
    CertificateUntrusted,
    SigningFailed,
    SigningKeyError,
)
from registry.provenance.keys import (
    StudioKeys,
    ensure_studio_keys,
    load_signing_keys,
    rotate_studio_keys,
    trust_anchors_pem,
    verify_chain,
)
from registry.provenance.sign import IngredientSpec, SignedMedia, sign_media
from registry.provenance.training import Permission, TrainingMining, UsePermission
from registry.provenance.verify import VerifyResult, verify_media

__all__ = [
    "CertificateInvalid",
    "CertificateUntrusted",
    "IngredientSpec",
    "Permission",
    "SignedMedia",
    "SigningFailed",
    "SigningKeyError",
    "StudioKeys",
    "TrainingMining",
    "UsePermission",
    "VerifyResult",
    "ensure_studio_keys",
    "load_signing_keys",
    "rotate_studio_keys",
    "sign_media",
    "trust_anchors_pem",
    "verify_chain",
    "verify_media",
]
