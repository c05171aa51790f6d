"""Provenance with the catalog: ingredients from assets, training permissions from the policies,
catalog matches for what a verifier receives.

- An ingredient is a catalog asset (by id or sha256: its original bytes come from the blob store) or
  a file. A file is linked to its catalog asset by sha256 first, then by fingerprint (the
  fingerprint area's Matcher: its best match), else it goes in unlinked.
- The `cawg.training-mining` permissions of the output are the policy decisions for the linked
  assets, per use, for the licensee `*` (anyone who receives the media) unless told otherwise:
  allowed -> allowed, denied -> notAllowed, review -> constrained; the most restrictive asset wins.
  Explicit permissions replace the derived ones use by use; an explicit permission looser than the
  policies is signed as asked but reported in `warnings`.
- Verification adds `matches`: the file's sha256 and fingerprints against the catalog, and the
  sha256 each ingredient declares.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from registry import catalog
from registry.audit import Actor, as_actor, record
from registry.catalog import Asset, BlobStore, sha256_bytes
from registry.db import parse_row_id
from registry.errors import InvalidInput, NotFound
from registry.fingerprint import Match, Matcher, find_in_catalog
from registry.media import probe
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from registry.policy import AssetFacts, Decision, PolicySet
from registry.provenance.keys import StudioKeys
from registry.provenance.repository import (
    ManifestIndex,
    find_by_file,
    get_manifest_record,
    record_manifest,
    studio_name,
)
from registry.provenance.sign import IngredientSpec, SignedMedia, sign_media
from registry.provenance.training import (
    RESTRICTIVENESS,
    USES,
    Permission,
    UsePermission,
    most_restrictive,
)
from registry.provenance.verify import VerifyResult, read_source, verify_media, verify_store

PUBLIC_LICENSEE = "*"
# The studio's reservation when nothing else is configured: every use notAllowed.
RESERVED = {u: UsePermission(u, Permission.notAllowed) for u in USES}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def load_matcher(session: Session, *, index_dir: Path, max_distance: int = 31) -> Matcher:
    """The fingerprint Matcher over the catalog (its index is rebuilt first when stale);
    `max_distance`: the PDQ threshold (Settings.pdq_match_distance)."""
    return Matcher.load(session, index_dir=index_dir, max_distance=max_distance)


def _best_match(
    matcher: Matcher | None, data: bytes, name: str, *, max_bytes: int, max_pixels: int
) -> Match | None:
    if matcher is None:
        return None
    result = matcher.match_file(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)
    return result.matches[0] if result.matches else None


def ingredient_from_asset(
    store: BlobStore, asset: Asset, *, relationship: str = "componentOf", source: str | None = None
) -> IngredientSpec:
    """A catalog asset as an ingredient, with its original bytes from the blob store."""
    try:
        data = store.read(asset.sha256)
    except OSError as exc:
        raise NotFound("blob of asset", asset.id) from exc
    return IngredientSpec(
        title=asset.original_name or asset.title,
        data=data,
        media_type=asset.media_type,
        sha256=asset.sha256,
        relationship=relationship,
        asset_id=asset.id,
        source=source or str(asset.id),
        match={"signal": "catalog", "asset_id": asset.id},
    )


def ingredient_from_file(
    session: Session,
    data: bytes,
    *,
    name: str,
    relationship: str = "componentOf",
    matcher: Matcher | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> IngredientSpec:
    """A file given as an ingredient, linked to its catalog asset by sha256, else by fingerprint.

    Raises UnsupportedMedia / CorruptMedia / MediaTooLarge for a file that is not sound media.
    """
    info = probe(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)
    digest = sha256_bytes(data)
    asset = catalog.find_asset_by_sha256(session, digest)
    match: dict[str, Any] | None = None
    if asset is not None:
        match = {"signal": "sha256", "asset_id": asset.id, "distance": 0, "confidence": 1.0}
    else:
        best = _best_match(matcher, data, name, max_bytes=max_bytes, max_pixels=max_pixels)
        if best is not None:
            asset = catalog.get_asset(session, best.asset_id)
            match = {"signal": best.signal, "asset_id": best.asset_id,
                     "distance": best.distance, "confidence": round(best.confidence, 3),
                     "transform": best.transform}
    return IngredientSpec(
        title=Path(name).name,
        data=data,
        media_type=info.media_type,
        sha256=digest,
        relationship=relationship,
        asset_id=asset.id if asset is not None else None,
        source=name,
        match=match,
    )


def resolve_ingredient(
    session: Session,
    store: BlobStore,
    ref: str,
    *,
    relationship: str = "componentOf",
    matcher: Matcher | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> IngredientSpec:
    """`ref` as the CLI takes it: an existing file path, else an asset id or sha256.

    Raises NotFound for an unknown asset, InvalidInput for anything else.
    """
    path = Path(ref)
    if path.is_file():
        data, label = read_source(path, name=ref, max_bytes=max_bytes)
        return ingredient_from_file(session, data, name=label, relationship=relationship,
                                    matcher=matcher, max_bytes=max_bytes, max_pixels=max_pixels)
    return ingredient_from_key(session, store, ref, relationship=relationship,
                               what="not a file, an asset id or a sha256")


def ingredient_from_key(
    session: Session,
    store: BlobStore,
    ref: str,
    *,
    relationship: str = "componentOf",
    what: str = "not an asset id or a sha256",
) -> IngredientSpec:
    """A catalog asset named by id or sha256 (never a path: safe for callers over HTTP).

    Raises NotFound for an unknown asset, InvalidInput for anything else.
    """
    key = ref.strip().lower()
    row_id = parse_row_id(key)
    if row_id is not None or _SHA256.match(key):
        asset = catalog.get_asset(session, row_id if row_id is not None else key)
        return ingredient_from_asset(store, asset, relationship=relationship, source=ref)
    raise InvalidInput(f"ingredient {ref!r}: {what}")


def _permission_for(decision: Decision) -> UsePermission:
    outcome = str(decision.outcome)
    use = str(decision.use)
    if outcome == "allowed":
        return UsePermission(use, Permission.allowed)
    if outcome == "review":
        by = decision.decided_by or "a licence"
        return UsePermission(use, Permission.constrained,
                             f"needs a licence review ({by}); contact the rightsholder")
    return UsePermission(use, Permission.notAllowed)


@dataclass(frozen=True)
class DerivedTraining:
    permissions: dict[str, UsePermission]
    decisions: tuple[dict[str, Any], ...] = ()


def derive_training(
    assets: Sequence[Asset], policies: PolicySet | None, *, licensee: str = PUBLIC_LICENSEE
) -> DerivedTraining:
    """Per use, the most restrictive policy decision over the assets (empty with no assets).

    Without a policy set every use of a studio asset is notAllowed: a use no grant covers is
    denied (rights reserved).
    """
    if not assets:
        return DerivedTraining({})
    permissions: dict[str, UsePermission] = {}
    decisions: list[dict[str, Any]] = []
    for use in USES:
        per_asset: list[UsePermission] = []
        for asset in assets:
            if policies is None:
                per_asset.append(UsePermission(use, Permission.notAllowed))
                decisions.append({"asset_id": asset.id, "use": use, "outcome": "denied",
                                  "summary": "no policies loaded: rights reserved"})
                continue
            decision = policies.decide(AssetFacts.from_asset(asset), licensee=licensee, use=use)
            per_asset.append(_permission_for(decision))
            decisions.append({"asset_id": asset.id, "use": use, "outcome": str(decision.outcome),
                              "decided_by": decision.decided_by, "summary": decision.summary})
        worst = most_restrictive(per_asset)
        if worst is not None:
            permissions[use] = worst
    return DerivedTraining(permissions, tuple(decisions))


@dataclass(frozen=True)
class SignOutcome:
    signed: SignedMedia
    derived: dict[str, UsePermission] = field(default_factory=dict)
    decisions: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.signed.as_dict(),
            "derived_training_mining": {u: p.as_dict() for u, p in self.derived.items()},
            "decisions": list(self.decisions),
            "warnings": list(self.warnings),
        }


def sign_generated(
    session: Session,
    source: Path | bytes,
    *,
    keys: StudioKeys,
    name: str | None = None,
    model: str | None = None,
    prompt: str | None = None,
    ingredients: Sequence[IngredientSpec] = (),
    explicit: Mapping[str, UsePermission] | None = None,
    policies: PolicySet | None = None,
    licensee: str = PUBLIC_LICENSEE,
    edit: bool = False,
    replace_manifest: bool = False,
    actor: Actor | str = "cli",
    studio_default: Mapping[str, UsePermission] | None = None,
    training_mining: bool = True,
    studio: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SignOutcome:
    """Sign generated media with its catalog ingredients and training permissions, keep the
    manifest in the repository, and audit it.

    `cawg.training-mining` is always written unless `training_mining=False` (the signer's
    explicit opt-out, which cannot be combined with `explicit`): derived from the policies for
    catalog ingredients, else the studio's reservation `studio_default` (every use notAllowed
    when not given); `explicit` replaces either, use by use. `studio`: the name recovered
    manifests give (default: the signing certificate's organisation).
    """
    ids = sorted({i.asset_id for i in ingredients if i.asset_id is not None})
    assets = [catalog.get_asset(session, i) for i in ids]
    if not training_mining and explicit:
        raise InvalidInput("training: permissions were given but training-mining was opted out")
    derived = derive_training(assets, policies, licensee=licensee)
    permissions = dict(derived.permissions)
    sources = ["policy"] if permissions else []
    if training_mining and not permissions:
        default = studio_default if studio_default is not None else RESERVED
        permissions = {u: p for u, p in default.items() if u in USES}
        sources.append("studio_default")
    warnings: list[str] = []
    for use, perm in (explicit or {}).items():
        if use not in USES:
            raise InvalidInput(f"training: unknown use {use!r} (one of {', '.join(USES)})")
        policy = derived.permissions.get(use)
        if policy is not None and RESTRICTIVENESS[perm.permission] < RESTRICTIVENESS[
                policy.permission]:
            warnings.append(
                f"{use}: signed as {perm.permission.value} as asked, but the policies of the "
                f"ingredients say {policy.permission.value}"
            )
        permissions[use] = perm
    if explicit:
        sources.append("explicit")
    if not training_mining:
        permissions, sources = {}, ["opted_out"]
        warnings.append("training-mining opted out: the output states no training permissions")
    unlinked = [i.title for i in ingredients if i.asset_id is None]
    if unlinked:
        warnings.append(
            "not in the catalog (no training permissions derived): " + ", ".join(unlinked)
        )
    signed = sign_media(source, keys=keys, name=name, model=model, prompt=prompt,
                        ingredients=ingredients, training=permissions, edit=edit,
                        replace_manifest=replace_manifest, max_bytes=max_bytes,
                        max_pixels=max_pixels)
    stored = record_manifest(
        session, signed, signing_cert=keys.signing_cert,
        studio=studio_name(keys.signing_cert, studio), actor=as_actor(actor).name,
        training_source="+".join(dict.fromkeys(sources)) or "none", model=model,
    )
    record(
        session, actor=actor, action="provenance.sign",
        subject=f"sha256:{sha256_bytes(signed.data)}",
        model=model, ingredients=[i.as_dict() for i in ingredients],
        training_mining={u: p.as_dict() for u, p in permissions.items()},
        signer=keys.signing_cert.subject.rfc4514_string(),
        manifest_id=stored.manifest_id,
    )
    return SignOutcome(signed, derived.permissions, derived.decisions, tuple(warnings))


def catalog_matches(
    session: Session,
    result: VerifyResult,
    data: bytes,
    *,
    name: str,
    matcher: Matcher | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> VerifyResult:
    """`result` with `matches`: catalog assets equal to or resembling the file, and the catalog
    assets its ingredients declare (by sha256). Ingredient entries get `in_catalog`."""
    matches: list[dict[str, Any]] = []
    digest = sha256_bytes(data)
    declared = [str(i.get("sha256")) for i in result.ingredients if i.get("sha256")]
    # One lookup for the file and every declared ingredient (the fingerprint stage 0 query).
    exact = find_in_catalog(session, [digest, *declared])
    same = exact.get(digest)
    if same is not None:
        matches.append({"subject": "file", "asset_id": same.asset_id,
                        "asset_sha256": same.sha256, "signal": "sha256", "distance": 0,
                        "confidence": 1.0})
    if matcher is not None:
        found = matcher.match_file(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)
        for m in found.matches:
            if same is not None and m.asset_id == same.asset_id:
                continue
            matches.append({"subject": "file", "asset_id": m.asset_id,
                            "asset_sha256": m.asset_sha256, "signal": m.signal,
                            "distance": m.distance, "confidence": round(m.confidence, 3),
                            "transform": m.transform, "region": m.region})
    ingredients: list[dict[str, Any]] = []
    for index, ingredient in enumerate(result.ingredients):
        entry = dict(ingredient)
        sha = entry.get("sha256")
        hit = exact.get(str(sha).lower()) if sha else None
        entry["in_catalog"] = hit is not None
        if hit is not None:
            entry["catalog_asset_id"] = hit.asset_id
            matches.append({"subject": f"ingredient[{index}]", "asset_id": hit.asset_id,
                            "asset_sha256": hit.sha256, "signal": "sha256", "distance": 0,
                            "confidence": 1.0})
        ingredients.append(entry)
    return replace(result, matches=tuple(matches), ingredients=tuple(ingredients))


def asset_summary(asset: Asset) -> dict[str, Any]:
    """What a partner may see of a catalog asset: id, title, franchise and rightsholder."""
    return {"asset_id": asset.id, "title": asset.title,
            "franchise": asset.franchise.name if asset.franchise else None,
            "rightsholder": asset.rightsholder.name}


def _asset(session: Session, asset_id: object) -> Asset | None:
    return session.get(Asset, int(str(asset_id))) if str(asset_id).isdigit() else None


def _with_summaries(session: Session, result: VerifyResult) -> VerifyResult:
    """Partner-safe summaries on the catalog matches (a partner cannot read /v1/assets)."""
    matches = []
    for m in result.matches:
        asset = _asset(session, m.get("asset_id"))
        matches.append({**m, "asset": asset_summary(asset)} if asset is not None else m)
    return replace(result, matches=tuple(matches))


def _kind_of(actions: Sequence[Mapping[str, Any]], media_type: str) -> str:
    what = "video" if media_type.startswith("video/") else "image"
    sources = {str(a.get("digitalSourceType") or "") for a in actions}
    if any(s.endswith("/compositeWithTrainedAlgorithmicMedia") for s in sources):
        return f"generatively edited {what}"
    if any(s.endswith("/trainedAlgorithmicMedia") for s in sources):
        return f"generated {what}"
    return what


def recover_manifest(
    session: Session,
    data: bytes,
    *,
    index: ManifestIndex,
    anchors_pem: bytes | None,
    name: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any] | None:
    """Look a file without a manifest up in the manifest repository; None when nothing we signed
    matches. The recovered manifest is validated again from its stored bytes (signature, chain,
    assertion hashes), and its catalog ingredients get partner-safe summaries."""
    matches = find_by_file(session, index, data, name=name, max_bytes=max_bytes,
                           max_pixels=max_pixels)
    if not matches:
        return None
    best = matches[0]
    record = get_manifest_record(session, best.manifest_id)
    checked = verify_store(record.store, anchors_pem=anchors_pem, media_type=record.media_type)
    ingredients = []
    for ingredient in checked.ingredients or tuple(record.ingredients):
        entry = dict(ingredient)
        asset = _asset(session, entry.get("asset_id"))
        if asset is None and entry.get("sha256"):
            asset = catalog.find_asset_by_sha256(session, str(entry["sha256"]))
        entry["in_catalog"] = asset is not None
        entry["asset"] = asset_summary(asset) if asset is not None else None
        ingredients.append(entry)
    when = record.signed_at.astimezone(dt.UTC)
    who = record.signer_common_name or record.signer
    actions = list(checked.actions) or record.actions
    kind = _kind_of(actions, record.media_type)
    how = "the same file" if best.alg == "sha256" else (
        f"{best.alg} at {best.distance} bits, similarity {best.similarity}/100")
    message = (f"this is {record.studio}'s {kind} signed on {when:%Y-%m-%d %H:%M} UTC by {who}; "
               f"its manifest was removed (found in the manifest repository: {how})")
    return {
        "message": message,
        "manifest_id": record.manifest_id,
        "studio": record.studio,
        "signed_at": when.isoformat(),
        "signer": {"common_name": record.signer_common_name, "subject": record.signer,
                   "serial": record.signer_serial, "certificate_sha256": record.signer_cert_sha256,
                   "trusted": bool(checked.signer and checked.signer.get("trusted"))},
        "match": best.as_dict(),
        "other_matches": [m.as_dict() for m in matches[1:]],
        "validation": {"state": checked.state, "codes": list(checked.codes),
                       "message": checked.message, "c2pa_state": checked.library_state},
        "actions": actions,
        "ingredients": ingredients,
        "training_mining": checked.training_mining.as_dict() if checked.training_mining
        else None,
        "title": record.title,
        "model": record.model,
        "media_type": record.media_type,
        "signed_sha256": record.signed_sha256,
    }


def verify_with_catalog(
    session: Session,
    source: Path | bytes,
    *,
    anchors_pem: bytes | None,
    name: str | None = None,
    matcher: Matcher | None = None,
    manifest_index: ManifestIndex | None = None,
    allow_network: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> VerifyResult:
    """verify_media, then the catalog matches of the file and its ingredients (with partner-safe
    asset summaries). A file with no manifest is looked up in the manifest repository: when we
    signed it, `recovered` says whose it is and what its manifest said."""
    data, label = read_source(source, name=name, max_bytes=max_bytes)
    result = verify_media(data, anchors_pem=anchors_pem, name=label, allow_network=allow_network,
                          max_bytes=max_bytes, max_pixels=max_pixels)
    recovered = None
    if result.state == "no_manifest" and result.remote_url is None:
        recovered = recover_manifest(session, data, index=manifest_index or ManifestIndex(),
                                     anchors_pem=anchors_pem, name=label, max_bytes=max_bytes,
                                     max_pixels=max_pixels)
    if recovered is not None:
        result = replace(result, message=f"{result.message}; {recovered['message']}")
    result = replace(result, extra={**result.extra, "recovered": recovered})
    result = catalog_matches(session, result, data, name=label, matcher=matcher,
                             max_bytes=max_bytes, max_pixels=max_pixels)
    return _with_summaries(session, result)
