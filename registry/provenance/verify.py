"""Verify the C2PA manifest of a file against trust anchors, offline, and say it plainly.

The result is one of four states (DESIGN.md, `clearhouse verify --json`):

- `valid`: the signature, the hashes and the certificate chain check out, and the chain reaches a
  configured trust anchor (c2pa "Trusted"; also "Valid" with signingCredential.trusted when the only
  failures are about a CAWG identity credential, which is reported in `codes` and `message`);
- `untrusted`: the manifest is intact and its signature valid, but the signer does not chain to a
  configured anchor (c2pa "Valid" with signingCredential.untrusted);
- `invalid`: something was changed after signing, or the manifest is malformed: the C2PA failure
  codes say what (assertion.dataHash.mismatch, claimSignature.mismatch, ...);
- `no_manifest`: nothing embedded to verify. A file whose manifest lives at a remote URL is
  `no_manifest` with code `manifest.inaccessible` and the URL, because we do not fetch it unless
  the caller allows the network.

A file that is not media at all, or is corrupt, is the caller's mistake: UnsupportedMedia /
CorruptMedia / MediaTooLarge (4xx), never a state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from registry.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from registry.media import probe
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from registry.provenance.c2pa_adapter import MANIFEST_STORE_TYPE, ReadOutcome, read_manifest
from registry.provenance.training import TrainingMining, base_label, read_training_mining

ASSET_METADATA_KEY = "com.clearhouse.asset"
GENERATION_LABEL = "com.clearhouse.generation"
UNTRUSTED = "signingCredential.untrusted"
TRUSTED = "signingCredential.trusted"
IDENTITY_PREFIX = "cawg."

# Plain words for the codes people meet most; others show the library's own explanation.
REASONS = {
    "assertion.dataHash.mismatch": "the media bytes were changed after signing",
    "assertion.bmffHash.mismatch": "the video bytes were changed after signing",
    "assertion.boxesHash.mismatch": "the media bytes were changed after signing",
    "assertion.hashedURI.mismatch": "an assertion of the manifest was changed after signing",
    "claimSignature.mismatch": "the claim signature does not match: the manifest or its "
    "certificate was altered after signing",
    "claimSignature.missing": "the manifest has no claim signature",
    "signingCredential.untrusted": "the signing certificate does not chain to a configured "
    "trust anchor",
    "signingCredential.invalid": "the signing certificate is not acceptable for C2PA",
    "signingCredential.expired": "the signing certificate had expired when it signed",
    "signingCredential.revoked": "the signing certificate is revoked",
    "algorithm.unsupported": "the manifest uses an unknown or unsupported algorithm",
    "general.error": "the manifest is malformed and could not be validated",
    "manifest.inaccessible": "the manifest is stored remotely and was not fetched (verification "
    "is offline)",
    "cawg.x509.credential.untrusted": "the CAWG identity credential is not from a trusted issuer "
    "(the C2PA signature itself is unaffected)",
}


@dataclass(frozen=True)
class VerifyResult:
    state: str  # valid | invalid | untrusted | no_manifest
    codes: tuple[str, ...] = ()
    message: str = ""
    reasons: tuple[dict[str, str], ...] = ()
    signer: dict[str, Any] | None = None
    actions: tuple[dict[str, Any], ...] = ()
    training_mining: TrainingMining | None = None
    ingredients: tuple[dict[str, Any], ...] = ()
    matches: tuple[dict[str, Any], ...] = ()
    media_type: str | None = None
    manifest_label: str | None = None
    title: str | None = None
    claim_generator: str | None = None
    generation: dict[str, Any] | None = None
    remote_url: str | None = None
    manifest_count: int = 0
    library_state: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trusted(self) -> bool:
        return self.state == "valid"

    def with_matches(self, matches: list[dict[str, Any]]) -> VerifyResult:
        return replace(self, matches=tuple(matches))

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "codes": list(self.codes),
            "message": self.message,
            "reasons": list(self.reasons),
            "signer": self.signer,
            "actions": list(self.actions),
            "training_mining": self.training_mining.as_dict() if self.training_mining else None,
            "ingredients": list(self.ingredients),
            "matches": list(self.matches),
            "media_type": self.media_type,
            "manifest": self.manifest_label,
            "title": self.title,
            "claim_generator": self.claim_generator,
            "generation": self.generation,
            "remote_url": self.remote_url,
            "manifest_count": self.manifest_count,
            "c2pa_state": self.library_state,
            **self.extra,
        }


def sniff_media_type(data: bytes) -> str | None:
    """The media type from magic bytes, for the formats we sign and read; None if unknown."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    return None


def read_source(source: Path | bytes, *, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of a file or upload within the byte limit, and a label for messages."""
    if isinstance(source, bytes):
        label = name or "<upload>"
        data = source
    else:
        label = name or str(source)
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise CorruptMedia(f"{label}: cannot read file ({exc.strerror})") from exc
        if size > max_bytes:
            raise MediaTooLarge(f"{label}: {size} bytes is over the limit of {max_bytes} bytes",
                                detail={"size": size, "limit": max_bytes})
        data = source.read_bytes()
    if len(data) > max_bytes:
        raise MediaTooLarge(f"{label}: {len(data)} bytes is over the limit of {max_bytes} bytes",
                            detail={"size": len(data), "limit": max_bytes})
    if not data:
        raise CorruptMedia(f"{label}: empty file (0 bytes)")
    return data, label


def verify_media(
    source: Path | bytes,
    *,
    anchors_pem: bytes | None,
    name: str | None = None,
    allow_network: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> VerifyResult:
    """Verify the manifest embedded in a file or upload (matches are filled in by the service).

    Raises UnsupportedMedia (not media we read), CorruptMedia (truncated or undecodable, when it
    has no readable manifest), MediaTooLarge (over the byte or pixel limit).
    """
    data, label = read_source(source, name=name, max_bytes=max_bytes)
    media_type = sniff_media_type(data)
    if media_type is None:
        # Let the safe loader name what it is (text, SVG, HTML ...); it raises.
        probe(data, name=label, max_bytes=max_bytes, max_pixels=max_pixels)
        raise UnsupportedMedia(f"{label}: not a format C2PA verification supports here")
    outcome = read_manifest(data, media_type, anchors_pem=anchors_pem, allow_network=allow_network)
    if outcome.kind in ("no_manifest", "error"):
        # No manifest, or the library choked: first make sure the media itself is sound, so that a
        # corrupt upload is the caller's error and not a verdict about provenance.
        probe(data, name=label, max_bytes=max_bytes, max_pixels=max_pixels)
    if outcome.kind == "no_manifest":
        return VerifyResult("no_manifest", message="no C2PA manifest is embedded in this file",
                            media_type=media_type)
    if outcome.kind == "remote":
        code = "manifest.inaccessible"
        message = (f"the manifest is remote ({outcome.remote_url}) and was not fetched: "
                   "verification is offline")
        return VerifyResult("no_manifest", codes=(code,), message=message,
                            reasons=({"code": code, "reason": message},),
                            media_type=media_type, remote_url=outcome.remote_url)
    if outcome.kind == "error":
        text = outcome.error or "unknown error"
        code = "algorithm.unsupported" if "algorithm" in text.lower() else "general.error"
        message = f"invalid: {REASONS[code]} ({text})"
        return VerifyResult(
            "invalid", codes=(code,), message=message,
            reasons=({"code": code, "reason": f"{REASONS[code]} ({text})"},),
            media_type=media_type, extra={"error_class": outcome.error_class},
        )
    return _from_store(outcome, media_type)


# The hard binding ties a manifest to the exact bytes it was signed with.
HARD_BINDING_CODES = frozenset({"assertion.dataHash.mismatch", "assertion.bmffHash.mismatch",
                                "assertion.boxesHash.mismatch"})


def verify_store(store: bytes, *, anchors_pem: bytes | None, media_type: str) -> VerifyResult:
    """Validate a manifest store on its own (one recovered from the manifest repository): the
    claim signature, the assertion hashes and the certificate chain, offline.

    Its hard binding is the hash of the signed file's bytes, which a copy whose manifest was
    removed no longer has: hard-binding mismatches stay in `codes` but do not make the state
    invalid. Anything else does (a changed assertion, a bad signature); `untrusted` when the
    signer does not chain to a configured anchor.
    """
    outcome = read_manifest(store, MANIFEST_STORE_TYPE, anchors_pem=anchors_pem)
    if outcome.kind != "manifest":
        text = outcome.error or "no manifest in the stored bytes"
        return VerifyResult("invalid", codes=("general.error",),
                            message=f"invalid: the stored manifest could not be read ({text})",
                            media_type=media_type)
    result = _from_store(outcome, media_type)
    serious = [c for c in result.codes if c not in HARD_BINDING_CODES and c != UNTRUSTED
               and not c.startswith(IDENTITY_PREFIX)]
    trusted = bool(result.signer and result.signer.get("trusted"))
    state = "invalid" if serious else ("valid" if trusted else "untrusted")
    reasons = tuple(r for r in result.reasons if r["code"] not in HARD_BINDING_CODES)
    message = _message(state, reasons, result.signer)
    if state != "invalid":
        message += ("; its hard binding is to the signed file's exact bytes, which this copy "
                    "no longer has")
    return replace(result, state=state, message=message)


def _from_store(outcome: ReadOutcome, media_type: str) -> VerifyResult:
    store = outcome.store or {}
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    manifest: Mapping[str, Any] = manifests.get(label) or {}
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    failures = [s for s in active.get("failure") or [] if isinstance(s, Mapping)]
    successes = {s.get("code") for s in active.get("success") or [] if isinstance(s, Mapping)}
    # Ingredient failures count too: a changed ingredient manifest is a reason to look.
    for delta in results.get("ingredientDeltas") or []:
        for s in ((delta or {}).get("validationDeltas") or {}).get("failure") or []:
            if isinstance(s, Mapping):
                failures.append(s)
    if not active and store.get("validation_status"):
        failures = [s for s in store["validation_status"] if isinstance(s, Mapping)]
    codes = list(dict.fromkeys(str(s.get("code")) for s in failures))
    library_state = outcome.state
    trusted = TRUSTED in successes and UNTRUSTED not in codes
    if library_state == "Invalid":
        state = "invalid"
    elif library_state == "Trusted":
        state = "valid"
    elif library_state == "Valid":
        serious = [c for c in codes if c != UNTRUSTED and not c.startswith(IDENTITY_PREFIX)]
        state = "invalid" if serious else ("valid" if trusted else "untrusted")
    else:
        state = "invalid" if codes else "untrusted"
    reasons = tuple(
        {"code": str(s.get("code")),
         "reason": REASONS.get(str(s.get("code"))) or str(s.get("explanation") or s.get("code")),
         "explanation": str(s.get("explanation") or "")}
        for s in failures
    )
    signature = manifest.get("signature_info") or {}
    signer = {
        "common_name": signature.get("common_name"),
        "issuer": signature.get("issuer"),
        "alg": signature.get("alg"),
        "serial": signature.get("cert_serial_number"),
        "time": signature.get("time"),
        "trusted": trusted,
    } if signature else None
    assertions = [a for a in manifest.get("assertions") or [] if isinstance(a, Mapping)]
    actions: list[dict[str, Any]] = []
    generation: dict[str, Any] | None = None
    for a in assertions:
        base = base_label(str(a.get("label", "")))
        data = a.get("data")
        if base == "c2pa.actions" and isinstance(data, Mapping):
            actions.extend(_action(x) for x in data.get("actions") or [] if isinstance(x, Mapping))
        elif base == GENERATION_LABEL and isinstance(data, Mapping):
            generation = dict(data)
    ingredients = tuple(
        _ingredient(i, manifests) for i in manifest.get("ingredients") or []
        if isinstance(i, Mapping)
    )
    generator = manifest.get("claim_generator")
    if not generator and manifest.get("claim_generator_info"):
        info = manifest["claim_generator_info"][0]
        generator = f"{info.get('name', '')} {info.get('version', '')}".strip()
    return VerifyResult(
        state=state,
        codes=tuple(codes),
        message=_message(state, reasons, signer),
        reasons=reasons,
        signer=signer,
        actions=tuple(actions),
        training_mining=read_training_mining(assertions),
        ingredients=ingredients,
        media_type=media_type,
        manifest_label=label,
        title=manifest.get("title"),
        claim_generator=str(generator) if generator else None,
        generation=generation,
        manifest_count=len(manifests),
        library_state=library_state,
    )


def _action(raw: Mapping[str, Any]) -> dict[str, Any]:
    agent = raw.get("softwareAgent")
    if isinstance(agent, Mapping):
        agent = agent.get("name")
    out: dict[str, Any] = {
        "action": raw.get("action"),
        "digitalSourceType": raw.get("digitalSourceType"),
        "softwareAgent": agent,
    }
    for key in ("when", "description", "parameters"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    return out


def _ingredient(raw: Mapping[str, Any], manifests: Mapping[str, Any]) -> dict[str, Any]:
    meta = raw.get("metadata") or {}
    asset = meta.get(ASSET_METADATA_KEY) if isinstance(meta, Mapping) else None
    asset = asset if isinstance(asset, Mapping) else {}
    own = raw.get("active_manifest")
    # What c2pa found wrong with the ingredient's own manifest when it was added.
    results = raw.get("validation_results")
    active = results.get("activeManifest") if isinstance(results, Mapping) else None
    statuses = (active or {}).get("failure") if isinstance(active, Mapping) else \
        raw.get("validation_status")
    codes = [str(s.get("code")) for s in statuses or [] if isinstance(s, Mapping)]
    return {
        "title": raw.get("title"),
        "format": raw.get("format"),
        "relationship": raw.get("relationship"),
        "asset_id": asset.get("asset_id"),
        "sha256": asset.get("sha256"),
        "linked_by": asset.get("linked_by"),
        "has_manifest": bool(own and own in manifests),
        "codes": list(dict.fromkeys(codes)),
    }


def _message(state: str, reasons: tuple[dict[str, str], ...], signer: Mapping[str, Any] | None
             ) -> str:
    who = ""
    if signer:
        who = f"signed by {signer.get('common_name') or '?'} (issuer {signer.get('issuer') or '?'})"
    if state == "valid":
        extra = [r["reason"] for r in reasons]
        tail = f"; note: {'; '.join(extra)}" if extra else ""
        return f"valid: {who}, chains to a configured trust anchor{tail}"
    if state == "untrusted":
        return (f"signature valid but untrusted: {who}, which does not chain to a configured "
                "trust anchor")
    details = "; ".join(f"{r['code']}: {r['reason']}" for r in reasons
                        if r["code"] != UNTRUSTED) or "the manifest did not validate"
    return f"invalid: {details}" + (f" ({who})" if who else "")
