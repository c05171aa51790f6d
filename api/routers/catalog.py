"""Catalog routes: /v1/rightsholders, /v1/franchises, /v1/assets, /v1/licences."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile, status
from PIL import Image

from api.deps import RowId, RowIdFilter, SessionDep, SettingsDep, StoreDep, actor_of, requires
from api.limits import decode_slot
from api.schemas.catalog import (
    AssetPage,
    AssetRead,
    AssetUpload,
    FranchiseCreate,
    FranchiseRead,
    LicenceCreate,
    LicenceRead,
    RightsholderCreate,
    RightsholderRead,
)
from registry import catalog
from registry.access import ApiKey, Role
from registry.db import MAX_ROW_ID
from registry.errors import AlreadyExists, MediaTooLarge
from registry.files import PRIVATE_FILE_MODE, write_atomically
from registry.fingerprint import fingerprint_new_asset
from registry.media import load_image

router = APIRouter(prefix="/v1", tags=["catalog"])

Reader = Annotated[ApiKey, Depends(requires(Role.legal, Role.ml))]
Writer = Annotated[ApiKey, Depends(requires(Role.legal))]
THUMBNAIL_MAX_PX = 1024
AssetKey = Annotated[str, Path(max_length=64, description="an asset id or its sha256")]


@router.get("/rightsholders", response_model=list[RightsholderRead])
def list_rightsholders(session: SessionDep, _: Reader) -> object:
    return catalog.list_rightsholders(session)


@router.post("/rightsholders", response_model=RightsholderRead, status_code=201)
def create_rightsholder(body: RightsholderCreate, session: SessionDep, key: Writer) -> object:
    return catalog.create_rightsholder(session, name=body.name, actor=actor_of(key))


@router.get("/rightsholders/{rightsholder_id}", response_model=RightsholderRead)
def get_rightsholder(rightsholder_id: RowId, session: SessionDep, _: Reader) -> object:
    return catalog.get_rightsholder(session, rightsholder_id)


@router.get("/franchises", response_model=list[FranchiseRead])
def list_franchises(
    session: SessionDep, _: Reader, rightsholder_id: RowIdFilter = None
) -> object:
    return catalog.list_franchises(session, rightsholder_id=rightsholder_id)


@router.post("/franchises", response_model=FranchiseRead, status_code=201)
def create_franchise(body: FranchiseCreate, session: SessionDep, key: Writer) -> object:
    holder = catalog.get_rightsholder(session, body.rightsholder)
    return catalog.create_franchise(session, name=body.name, rightsholder=holder,
                                    actor=actor_of(key))


@router.get("/franchises/{franchise_id}", response_model=FranchiseRead)
def get_franchise(franchise_id: RowId, session: SessionDep, _: Reader) -> object:
    return catalog.get_franchise(session, franchise_id)


@router.get("/assets", response_model=AssetPage)
def list_assets(
    session: SessionDep,
    _: Reader,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=catalog.service.MAX_PAGE_SIZE)] = 50,
    franchise_id: RowIdFilter = None,
    rightsholder_id: RowIdFilter = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str | None, Query(max_length=200, description="part of the title")] = None,
) -> object:
    where = catalog.AssetFilter(franchise_id, rightsholder_id, tag, kind, q)
    items, total = catalog.list_assets(session, where=where, offset=offset, limit=limit)
    return {"items": items, "total": total, "offset": offset, "limit": limit}


@router.post("/assets", response_model=AssetUpload, status_code=201)
def upload_asset(
    response: Response,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    key: Writer,
    file: Annotated[UploadFile, File(description="the original media file")],
    rightsholder: Annotated[str, Form(min_length=1)],
    franchise: Annotated[str | None, Form()] = None,
    title: Annotated[str | None, Form()] = None,
    tags: Annotated[str, Form(description="comma-separated")] = "",
) -> object:
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise MediaTooLarge(
            f"{file.filename}: upload is over the limit of {settings.max_upload_bytes} bytes"
        )

    def register() -> tuple[catalog.Asset, bool]:
        holder = catalog.get_rightsholder(session, rightsholder)
        fr = catalog.get_franchise(session, franchise) if franchise else None
        return catalog.register_asset(
            session, store=store, data=data, name=file.filename or "upload",
            rightsholder=holder, franchise=fr, title=title, tags=tags.split(","),
            max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
            actor=actor_of(key),
        )

    try:
        asset, created = register()
    except AlreadyExists:
        # The same bytes were uploaded at the same moment and the other request won: answer
        # like any later duplicate (200 existing).
        session.rollback()
        asset, created = register()
    if created:
        fingerprint_new_asset(session, asset, data)
    else:
        response.status_code = status.HTTP_200_OK
    return {"status": "created" if created else "existing", "asset": asset}


@router.get("/assets/{key}", response_model=AssetRead)
def get_asset(key: AssetKey, session: SessionDep, _: Reader) -> object:
    return catalog.get_asset(session, key)


@router.get("/assets/{key}/content", response_class=Response, responses={200: {
    "description": "the original bytes", "content": {"image/*": {}, "video/*": {}}}})
def get_asset_content(key: AssetKey, session: SessionDep, store: StoreDep, _: Reader) -> Response:
    asset = catalog.get_asset(session, key)
    return Response(store.read(asset.sha256), media_type=asset.media_type)


@router.get("/assets/{key}/thumbnail", response_class=Response, responses={200: {
    "description": "a JPEG thumbnail", "content": {"image/jpeg": {}}}})
def get_asset_thumbnail(
    key: AssetKey,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    _: Reader,
    size: Annotated[int, Query(ge=16, le=THUMBNAIL_MAX_PX)] = 256,
) -> Response:
    asset = catalog.get_asset(session, key)
    headers = {"Cache-Control": "max-age=86400"}
    # Decoding a large original costs hundreds of MB: do it once per size, a few at a time.
    cached = settings.thumbnails_dir / f"{asset.sha256}-{size}.jpg"
    if cached.is_file():
        return Response(cached.read_bytes(), media_type="image/jpeg", headers=headers)
    with decode_slot():
        if asset.kind != "image":
            from registry.media import sample_frames

            image = next(iter(sample_frames(str(store.path(asset.sha256)))), None)
            picture = image.image if image else Image.new("RGB", (size, size))
        else:
            picture = load_image(store.path(asset.sha256), draft_size=(size, size),
                                 max_pixels=settings.max_image_pixels)
        picture.thumbnail((size, size))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85)
        picture.close()
    write_atomically(cached, out.getvalue(), mode=PRIVATE_FILE_MODE)
    return Response(out.getvalue(), media_type="image/jpeg", headers=headers)


@router.get("/licences", response_model=list[LicenceRead])
def list_licences(session: SessionDep, _: Reader,
                  licensee: Annotated[str | None, Query(max_length=200)] = None) -> object:
    return catalog.list_licences(session, licensee=licensee)


@router.post("/licences", response_model=LicenceRead, status_code=201)
def create_licence(body: LicenceCreate, session: SessionDep, key: Writer) -> object:
    licensor = catalog.get_rightsholder(session, body.licensor)
    row = catalog.create_licence(
        session,
        name=body.name,
        licensor=licensor,
        licensee=body.licensee,
        scope=body.scope,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        territories=body.territories,
        model_families=body.model_families,
        policy_file=body.policy_file,
        notes=body.notes,
        actor=actor_of(key),
    )
    return row


@router.get("/licences/{licence_id}", response_model=LicenceRead)
def get_licence(licence_id: RowId, session: SessionDep, _: Reader) -> object:
    return catalog.get_licence(session, licence_id)
