"""The web console for legal teams: Jinja2 pages and htmx fragments over the registry services.

Pages live in templates/pages/, the fragments htmx swaps in live in templates/components/.
`security` holds sessions, CSRF, the Origin check and the headers; `pages` the sign-in, home,
catalog and policies; `clearances` the jobs, the review queue and certificates.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse

from api.console import areas, clearances, pages, security

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
def _root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


router.include_router(pages.router)
router.include_router(clearances.router)
router.include_router(areas.router)
# Last: any other console URL is an HTML 404 (see security.install).
router.include_router(pages.fallback)


def install(app: FastAPI) -> None:
    """Mount the console on `app`: its routes, its headers and checks, its HTML errors."""
    security.install(app)
    app.include_router(router)


__all__ = ["install", "router"]
