"""Sign generated media with a C2PA manifest: how it was made, from what, and what training allows.

The manifest we write:
- `c2pa.actions`: one `c2pa.created` action, digitalSourceType trainedAlgorithmicMedia
  (compositeWithTrainedAlgorithmicMedia for a generative edit), softwareAgent = the model;
- ingredients: the studio assets used, `componentOf` when placed in the output, `inputTo` when a
  reference or conditioning input, each with our metadata `com.clearhouse.asset` =
  {asset_id, sha256} so that a verifier can tie it back to the catalog;
- `cawg.training-mining` (entries map, CAWG TDM v1.1) when permissions are known;
- `com.clearhouse.generation`: the model and prompt.

This module knows nothing of the database: the service resolves catalog assets and policy decisions
and passes plain values in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput, UnsupportedMedia
from registry.media import load_image, probe
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from registry.provenance.c2pa_adapter import (
    MEDIA_TYPES_SIGNABLE,
    read_manifest,
    sign_with_store,
)
from registry.provenance.keys import StudioKeys
from registry.provenance.softbinding import (
    OutputFingerprint,
    iscc_image_code,
    output_fingerprints,
    soft_binding_assertion,
)
from registry.provenance.training import UsePermission, cawg_assertion
from registry.provenance.verify import (
    ASSET_METADATA_KEY,
    GENERATION_LABEL,
    read_source,
    sniff_media_type,
)

CLAIM_GENERATOR = "clearhouse"
CLAIM_GENERATOR_VERSION = "0.1.0"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
)
RELATIONSHIPS = ("componentOf", "inputTo")
MAX_PROMPT_CHARS = 4000


@dataclass(frozen=True)
class IngredientSpec:
    """One ingredient to embed: its bytes and what we know about it."""

    title: str
    data: bytes
    media_type: str
    sha256: str
    relationship: str = "componentOf"
    asset_id: int | None = None
    source: str | None = None  # what the user gave: an asset id or a file name
    match: dict[str, Any] | None = None  # how a file was linked to its asset (sha256/fingerprint)

    def definition(self) -> dict[str, Any]:
        if self.relationship not in RELATIONSHIPS:
            raise InvalidInput(
                f"ingredient {self.title!r}: relationship {self.relationship!r} is not one of "
                f"{', '.join(RELATIONSHIPS)}"
            )
        return {
            "title": self.title,
            "relationship": self.relationship,
            "metadata": {ASSET_METADATA_KEY: {
                "asset_id": self.asset_id,
                "sha256": self.sha256,
                # How the asset was identified: catalog (named), sha256, or a fingerprint signal.
                "linked_by": self.match.get("signal") if self.match else None,
            }},
        }

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "relationship": self.relationship, "asset_id": self.asset_id,
                "sha256": self.sha256, "source": self.source, "match": self.match}


@dataclass(frozen=True)
class SignedMedia:
    """The signed file, with what the manifest repository keeps of it."""

    data: bytes
    media_type: str
    manifest: dict[str, Any]
    ingredients: tuple[IngredientSpec, ...] = ()
    training: dict[str, UsePermission] = field(default_factory=dict)
    store: bytes = b""  # the manifest store c2pa embedded (application/c2pa)
    manifest_label: str | None = None  # the active manifest's label (urn:c2pa:...)
    iscc: str | None = None  # the soft binding (ISCC Content-Code Image); None for video
    fingerprints: tuple[OutputFingerprint, ...] = ()  # ours, for the repository only
    size: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "media_type": self.media_type,
            "bytes": len(self.data),
            "manifest_id": self.manifest_label,
            "soft_binding": {"alg": "io.iscc.v0", "iscc": self.iscc} if self.iscc else None,
            "ingredients": [i.as_dict() for i in self.ingredients],
            "training_mining": {u: p.as_dict() for u, p in self.training.items()},
        }


def build_manifest(
    *,
    title: str,
    media_type: str,
    model: str | None,
    prompt: str | None,
    training: Mapping[str, UsePermission],
    edit: bool = False,
    soft_binding: str | None = None,
) -> dict[str, Any]:
    """The manifest definition c2pa's Builder takes (ingredients are added separately).
    `soft_binding`: the ISCC image code of the content, written as `c2pa.soft-binding`."""
    action: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": COMPOSITE_WITH_TRAINED if edit else TRAINED_ALGORITHMIC_MEDIA,
    }
    if model:
        action["softwareAgent"] = {"name": model}
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": [action]}}]
    if training:
        assertions.append(cawg_assertion(training))
    if soft_binding:
        assertions.append(soft_binding_assertion(soft_binding))
    generation = {k: v for k, v in (("model", model), ("prompt", prompt)) if v}
    if generation:
        assertions.append({"label": GENERATION_LABEL, "data": generation})
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": CLAIM_GENERATOR_VERSION}],
        "title": title,
        "format": media_type,
        "assertions": assertions,
    }


def sign_media(
    source: Path | bytes,
    *,
    keys: StudioKeys,
    name: str | None = None,
    model: str | None = None,
    prompt: str | None = None,
    ingredients: Sequence[IngredientSpec] = (),
    training: Mapping[str, UsePermission] | None = None,
    edit: bool = False,
    replace_manifest: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SignedMedia:
    """Sign a generated image or video; return the signed bytes (the input is never changed).

    The input goes through the safe loader first (format from the bytes, byte and pixel limits, a
    full decode). Raises UnsupportedMedia (a format we do not sign: JPEG, PNG, WebP, GIF, TIFF,
    AVIF, MP4, MOV are), CorruptMedia, MediaTooLarge, InvalidInput (a prompt over 4000
    characters, a bad relationship, an input that already carries a C2PA manifest: signing would
    drop it, so it takes `replace_manifest=True`) or SigningFailed.
    """
    data, label = read_source(source, name=name, max_bytes=max_bytes)
    info = probe(data, name=label, max_bytes=max_bytes, max_pixels=max_pixels)
    media_type = sniff_media_type(data) or info.media_type
    if media_type not in MEDIA_TYPES_SIGNABLE:
        raise UnsupportedMedia(
            f"{label}: {info.media_type} cannot carry a C2PA manifest here (signable: "
            f"{', '.join(sorted(MEDIA_TYPES_SIGNABLE))})"
        )
    if not replace_manifest:
        existing = read_manifest(data, media_type, anchors_pem=None)
        if existing.kind != "no_manifest":
            raise InvalidInput(
                f"{label}: already carries a C2PA manifest; signing would replace it (ask for "
                "that explicitly to go ahead)"
            )
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(f"prompt: {len(prompt)} characters, over the limit of "
                           f"{MAX_PROMPT_CHARS}")
    permissions = dict(training or {})
    title = Path(name).name if name else (
        source.name if isinstance(source, Path) else "generated")
    code: str | None = None
    fingerprints: list[OutputFingerprint] = []
    size: tuple[int, int] | None = None
    if media_type.startswith("image/"):
        # c2pa adds metadata only: the signed file shows these very pixels.
        image = load_image(data, name=label, max_bytes=max_bytes, max_pixels=max_pixels)
        code = iscc_image_code(image)
        fingerprints = output_fingerprints(image)
        size = image.size
    manifest = build_manifest(title=title, media_type=media_type, model=model, prompt=prompt,
                              training=permissions, edit=edit, soft_binding=code)
    signed, store = sign_with_store(
        manifest,
        data=data,
        media_type=media_type,
        chain_pem=keys.chain_pem,
        key_pem=keys.key_pem,
        ingredients=[(i.definition(), i.media_type, i.data) for i in ingredients],
    )
    readback = read_manifest(signed, media_type, anchors_pem=None)
    label_read = (readback.store or {}).get("active_manifest")
    return SignedMedia(signed, media_type, manifest, tuple(ingredients), permissions, store,
                       str(label_read) if label_read else None, code, tuple(fingerprints), size)
