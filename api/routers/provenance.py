"""Provenance routes: POST /v1/sign (partners, admins) returns the signed file; POST /v1/verify
(any role, partners included) answers the verification result; GET /v1/trust-anchors gives the PEM
bundle verification trusts, so that partners can verify offline themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from sqlalchemy.orm import Session

from api.deps import (
    ANY_ROLE,
    ManifestIndexDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    actor_of,
    requires,
)
from api.limits import decode_slot
from api.schemas.provenance import VerifyRead
from registry.access import ApiKey, Role
from registry.errors import InvalidInput, MediaTooLarge
from registry.fingerprint import Matcher
from registry.policy import PolicyHolder, PolicySet
from registry.provenance.keys import ROOT_CERT, studio_signing_keys, trust_anchors_pem
from registry.provenance.service import (
    PUBLIC_LICENSEE,
    ingredient_from_file,
    ingredient_from_key,
    load_matcher,
    sign_generated,
    verify_with_catalog,
)
from registry.provenance.sign import IngredientSpec
from registry.provenance.training import parse_training_specs
from registry.settings import Settings

router = APIRouter(prefix="/v1", tags=["provenance"])

Signer = Annotated[ApiKey, Depends(requires(Role.partner))]
Verifier = Annotated[ApiKey, Depends(requires(*ANY_ROLE))]
MAX_INGREDIENTS = 50


def _policies(request: Request, settings: Settings) -> PolicySet | None:
    """The policies in force (shared with the policy routes), or None without a policies folder
    (then studio ingredients reserve every use)."""
    if not settings.policies_dir.is_dir():
        return None
    state = request.app.state
    holder: PolicyHolder | None = getattr(state, "policy_holder", None)
    if holder is None:
        holder = PolicyHolder(settings.policies_dir)
        state.policy_holder = holder
    return holder.current()


def _matcher(session: Session, settings: Settings) -> Matcher:
    return load_matcher(session, index_dir=settings.home / "index",
                        max_distance=settings.pdq_match_distance)


def _anchors(settings: Settings) -> bytes | None:
    if settings.trust_anchors is None and not (settings.keys_dir / ROOT_CERT).is_file():
        return None
    return trust_anchors_pem(settings.trust_anchors, settings.keys_dir)


def _read(upload: UploadFile, settings: Settings) -> bytes:
    data = upload.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise MediaTooLarge(f"{upload.filename}: over the limit of {settings.max_upload_bytes} "
                            "bytes")
    return data


@router.post(
    "/sign",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {},
                                 "video/mp4": {}},
                     "description": "the signed file"}},
)
def sign(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    key: Signer,
    file: Annotated[UploadFile, File(description="the generated image or video")],
    model: Annotated[str | None, Form(max_length=200)] = None,
    prompt: Annotated[str | None, Form(max_length=4000)] = None,
    ingredient: Annotated[list[str] | None, Form(
        description="studio asset placed in the output (componentOf): asset id or sha256")]
    = None,
    reference: Annotated[list[str] | None, Form(
        description="reference or conditioning input (inputTo): asset id or sha256")] = None,
    ingredient_file: Annotated[list[UploadFile] | None, File(
        description="ingredient files, linked to catalog assets by sha256 then fingerprint")]
    = None,
    training: Annotated[list[str] | None, Form(
        description="allowed|notAllowed|constrained, or USE=PERMISSION[:constraint]")] = None,
    licensee: Annotated[str, Form(max_length=200)] = PUBLIC_LICENSEE,
    edit: Annotated[bool, Form()] = False,
    replace_manifest: Annotated[bool, Form(
        description="sign even if the file already carries a C2PA manifest (it is replaced)")]
    = False,
    training_mining: Annotated[bool, Form(
        description="write cawg.training-mining (default: the policies' permissions, or the "
                    "studio's reservation without catalog ingredients); false opts out")]
    = True,
) -> Response:
    """Sign generated media with a C2PA manifest and return the signed file."""
    explicit = parse_training_specs(training or [])
    refs = [(r, "componentOf") for r in ingredient or []] + \
        [(r, "inputTo") for r in reference or []]
    if len(refs) + len(ingredient_file or []) > MAX_INGREDIENTS:
        raise InvalidInput(f"at most {MAX_INGREDIENTS} ingredients")
    data = _read(file, settings)
    limits = {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
    # Sync routes: FastAPI runs them in its thread pool, so signing never blocks the event loop.
    matcher = _matcher(session, settings) if ingredient_file else None
    specs: list[IngredientSpec] = []
    for ref, relationship in refs:
        # Catalog keys only: a server-side path is never read for a caller.
        specs.append(ingredient_from_key(session, store, ref, relationship=relationship))
    for upload in ingredient_file or []:
        with decode_slot():
            specs.append(ingredient_from_file(
                session, _read(upload, settings), name=upload.filename or "ingredient",
                matcher=matcher, max_bytes=settings.max_upload_bytes,
                max_pixels=settings.query_pixels))
    keys = studio_signing_keys(signing_cert=settings.signing_cert,
                               signing_key=settings.signing_key, keys_dir=settings.keys_dir)
    policies = _policies(request, settings) if any(s.asset_id for s in specs) else None
    with decode_slot():
        outcome = sign_generated(
            session, data, keys=keys, name=file.filename or "generated", model=model,
            prompt=prompt, ingredients=specs, explicit=explicit, policies=policies,
            licensee=licensee, edit=edit, replace_manifest=replace_manifest, actor=actor_of(key),
            studio_default=parse_training_specs(settings.default_training_mining),
            training_mining=training_mining, studio=settings.studio_name, **limits,
        )
    summary = {"manifest_id": outcome.signed.manifest_label,
               "soft_binding": {"alg": "io.iscc.v0", "iscc": outcome.signed.iscc}
               if outcome.signed.iscc else None,
               "ingredients": [i.asset_id for i in outcome.signed.ingredients],
               "training_mining": {u: p.permission.value
                                   for u, p in outcome.signed.training.items()},
               "warnings": list(outcome.warnings)}
    name = Path(file.filename or "generated").name
    return Response(
        content=outcome.signed.data,
        media_type=outcome.signed.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="signed-{_safe(name)}"',
            "X-Clearhouse-Signing": json.dumps(summary, ensure_ascii=True),
        },
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "file"


@router.post("/verify", response_model=VerifyRead)
def verify(
    session: SessionDep,
    settings: SettingsDep,
    index: ManifestIndexDep,
    _: Verifier,
    file: Annotated[UploadFile, File(description="the file to verify")],
) -> object:
    """Verify an uploaded file's C2PA manifest against the studio's trust anchors (offline) and
    match it and its ingredients to the catalog. A file whose manifest was removed is looked up
    in the manifest repository: `recovered` says whose it is and what its manifest said."""
    data = _read(file, settings)
    matcher = _matcher(session, settings)
    with decode_slot():
        result = verify_with_catalog(
            session, data, anchors_pem=_anchors(settings), name=file.filename or "upload",
            matcher=matcher, manifest_index=index, max_bytes=settings.max_upload_bytes,
            max_pixels=settings.query_pixels)
    return result.as_dict()


@router.get("/trust-anchors", response_class=Response,
            responses={200: {"content": {"application/x-pem-file": {}}}})
def trust_anchors(settings: SettingsDep, _: Verifier) -> Response:
    """The PEM bundle of trust anchors this registry verifies against."""
    anchors = _anchors(settings)
    if anchors is None:
        keys = studio_signing_keys(signing_cert=settings.signing_cert,
                                   signing_key=settings.signing_key, keys_dir=settings.keys_dir)
        anchors = keys.root_pem
    return Response(anchors, media_type="application/x-pem-file")
