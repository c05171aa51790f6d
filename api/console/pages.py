"""Console pages: sign in and out, home, catalog and asset (with the decision panel), policies."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    TEMPLATES,
    Caller,
    clear_session_cookie,
    is_tls,
    login_csrf_ok,
    maybe_signed_in,
    new_login_csrf,
    render,
    set_session_cookie,
    signed_in,
)
from api.deps import SessionDep, StoreDep
from registry import catalog
from registry.access import Role, authenticate, end_session, find_session, start_session
from registry.audit import record
from registry.errors import Unauthorized
from registry.media import load_image, sample_frames

router = APIRouter()
fallback = APIRouter()
PAGE_SIZE = 24
THUMBNAIL_MAX_PX = 1024

Anyone = Annotated[Caller, Depends(signed_in())]
Reader = Annotated[Caller, Depends(signed_in(Role.legal, Role.ml))]


def home_for(caller: Caller) -> str:
    """Where a user lands after signing in: partners only verify."""
    return "/console/verify" if caller.role == Role.partner.value else "/console/"


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/console/") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target:
        return target
    return None


def _login_form(request: Request, error: str | None, next_url: str | None,
                status_code: int = 200) -> Response:
    token = new_login_csrf()
    response = TEMPLATES.TemplateResponse(
        request, "pages/login.html",
        {"error": error, "login_csrf": token, "next": next_url or "", "me": None},
        status_code=status_code)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=is_tls(request), path="/console/login", max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: SessionDep, next: str | None = None) -> Response:
    found = find_session(session, request.cookies.get(SESSION_COOKIE))
    if found is not None:
        caller = Caller.of(found[1], found[0].csrf_token)
        return RedirectResponse(_safe_next(next) or home_for(caller), status_code=303)
    return _login_form(request, None, _safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    next_url = _safe_next(next)
    if not login_csrf_ok(request, csrf_token):
        return _login_form(request, "The sign-in form expired: please try again.", next_url,
                           status_code=403)
    try:
        row = authenticate(session, key.strip())
    except Unauthorized as exc:
        return _login_form(request, exc.message, next_url, status_code=401)
    console_session, token = start_session(session, key=row)
    record(session, actor=row.name, action="console.login", subject=f"api_key:{row.prefix}",
           role=row.role)
    caller = Caller.of(row, console_session.csrf_token)
    target = next_url if next_url and caller.role != Role.partner.value else home_for(caller)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, caller: Anyone) -> Response:
    end_session(session, request.cookies.get(SESSION_COOKIE))
    record(session, actor=caller.name, action="console.logout",
           subject=f"api_key:{caller.prefix}")
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(request, response)
    return response


# --- catalog -------------------------------------------------------------------------------------


def _asset_page(session: Session, where: catalog.AssetFilter, page_no: int) -> dict[str, object]:
    items, total = catalog.list_assets(
        session, where=where, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return {"items": items, "total": total, "page": page_no, "pages": pages}


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


@router.get("/assets", response_class=HTMLResponse)
def assets_page(
    request: Request, session: SessionDep, caller: Reader, q: str = "",
    franchise_id: str = "", rightsholder_id: str = "", tag: str = "", page_no: str = "1",
    page: str = "1",
) -> Response:
    q, tag = q[:200], tag[:100]
    fid, rid = _int_or_none(franchise_id), _int_or_none(rightsholder_id)
    number = min(max(_int_or_none(page) or 1, 1), 10**6)
    where = catalog.AssetFilter(franchise_id=fid, rightsholder_id=rid, tag=tag or None,
                                q=q or None)
    context = _asset_page(session, where, number)
    context |= {"q": q, "franchise_id": fid, "rightsholder_id": rid, "tag": tag,
                "franchises": catalog.list_franchises(session),
                "rightsholders": catalog.list_rightsholders(session),
                "upload_form": caller.can(Role.legal)}
    template = (
        "components/asset_grid.html" if request.headers.get("hx-request") else "pages/assets.html"
    )
    return render(request, template, context)


def thumbnail_bytes(store: catalog.BlobStore, asset: catalog.Asset, size: int) -> bytes:
    if asset.kind != "image":
        frame = next(iter(sample_frames(str(store.path(asset.sha256)))), None)
        picture = frame.image if frame else Image.new("RGB", (size, size))
    else:
        picture = load_image(store.path(asset.sha256), draft_size=(size, size))
    picture.thumbnail((size, size))
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


@router.get("/assets/{asset_key}/thumbnail")
def asset_thumbnail(session: SessionDep, store: StoreDep, caller: Reader, asset_key: str,
                    size: int = 256) -> Response:
    asset = catalog.get_asset(session, asset_key[:100])
    data = thumbnail_bytes(store, asset, min(max(size, 16), THUMBNAIL_MAX_PX))
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@fallback.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                    include_in_schema=False)
def not_found(rest: str, caller: Annotated[Caller | None, Depends(maybe_signed_in)]) -> Response:
    raise StarletteHTTPException(404, "There is no such page in the console.")
