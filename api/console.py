"""The web console for legal teams: Jinja2 pages, htmx fragments, the same registry services.

Login takes an API key and keeps it in an HttpOnly, SameSite=Strict cookie, which api.deps reads
like a bearer token; every page checks the role. Pages live in templates/pages/, the fragments
htmx swaps in live in templates/components/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from api.deps import SessionDep, presented_key
from registry import catalog
from registry.access import ApiKey, Role, authenticate, require_role
from registry.errors import Forbidden, Unauthorized

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "clearhouse_key"
PAGE_SIZE = 24
CONSOLE_ROLES = (Role.legal, Role.ml)

router = APIRouter(prefix="/console", include_in_schema=False)


def _caller(request: Request, session: SessionDep) -> ApiKey | None:
    try:
        key = authenticate(session, presented_key(request))
        require_role(key, *CONSOLE_ROLES)
    except (Unauthorized, Forbidden):
        return None
    return key


def _to_login() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(request, "pages/login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, key: Annotated[str, Form()] = "") -> Response:
    try:
        row = authenticate(session, key.strip())
        require_role(row, *CONSOLE_ROLES)
    except (Unauthorized, Forbidden) as exc:
        return TEMPLATES.TemplateResponse(
            request, "pages/login.html", {"error": exc.message}, status_code=401
        )
    response = RedirectResponse("/console/assets", status_code=303)
    response.set_cookie(COOKIE, key.strip(), httponly=True, samesite="strict", max_age=8 * 3600)
    return response


@router.post("/logout")
def logout() -> Response:
    response = _to_login()
    response.delete_cookie(COOKIE)
    return response


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
def home() -> Response:
    return RedirectResponse("/console/assets", status_code=303)


def _asset_page(
    session: Session, q: str, franchise_id: int | None, page: int
) -> dict[str, object]:
    where = catalog.AssetFilter(franchise_id=franchise_id, q=q or None)
    items, total = catalog.list_assets(
        session, where=where, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return {"items": items, "total": total, "page": page, "pages": pages, "q": q,
            "franchise_id": franchise_id}


@router.get("/assets", response_class=HTMLResponse)
def assets_page(
    request: Request, session: SessionDep, q: str = "", franchise_id: str = "", page: int = 1
) -> Response:
    key = _caller(request, session)
    if key is None:
        return _to_login()
    fid = int(franchise_id) if franchise_id.isdigit() else None  # "" from the form: all
    context = _asset_page(session, q, fid, max(page, 1))
    context |= {"me": key, "franchises": catalog.list_franchises(session)}
    template = (
        "components/asset_grid.html" if request.headers.get("hx-request") else "pages/assets.html"
    )
    return TEMPLATES.TemplateResponse(request, template, context)


@router.get("/assets/{asset_key}", response_class=HTMLResponse)
def asset_page(request: Request, session: SessionDep, asset_key: str) -> Response:
    key = _caller(request, session)
    if key is None:
        return _to_login()
    asset = catalog.get_asset(session, asset_key)
    return TEMPLATES.TemplateResponse(request, "pages/asset.html", {"me": key, "asset": asset})
