"""The FastAPI application: JSON API under /v1, health, OpenAPI at /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from api import console
from api.errors import error_body, install_error_handlers
from api.routers import (
    catalog,
    clearance,
    export,
    fingerprint,
    health,
    policy,
    provenance,
    softbinding,
)
from registry.catalog import BlobStore
from registry.db import make_engine, make_session_factory, migrate
from registry.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "static"
# Multipart framing on top of the largest allowed file.
UPLOAD_OVERHEAD_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if run_migrations:
        migrate(url)
    engine = make_engine(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.resume_jobs_on_start:
            app.state.resume_thread = clearance.resume_unfinished_jobs(
                app.state.session_factory, settings
            )
        yield

    # /docs and /redoc from assets the fastapi-offline package ships: no CDN, works offline.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="Clearhouse",
        version="0.1.0",
        description="The registry media studios trust for licensing their content to AI.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.store = BlobStore(settings.blobs_dir)
    install_error_handlers(app)

    body_limit = settings.max_upload_bytes + UPLOAD_OVERHEAD_BYTES

    @app.middleware("http")
    async def reject_oversized_bodies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse(error_body("bad_request", "invalid Content-Length"), 400)
            if int(length) > body_limit:
                message = (
                    f"request body of {length} bytes is over the limit of "
                    f"{settings.max_upload_bytes} bytes"
                )
                return JSONResponse(error_body("payload_too_large", message), 413)
        return await call_next(request)

    app.include_router(health.router)
    for area in (catalog, policy, fingerprint, clearance, export, provenance, softbinding):
        app.include_router(area.router)
    console.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
