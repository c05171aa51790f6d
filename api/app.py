"""The FastAPI application: JSON API under /v1, health, OpenAPI at /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from api import console
from api.errors import install_error_handlers
from api.limits import RequestGuard
from api.openapi import install_openapi
from api.routers import (
    audit,
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
from registry.files import ensure_private_dir
from registry.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or get_settings()
    ensure_private_dir(settings.home)
    url = settings.resolved_database_url
    if run_migrations:
        migrate(url)
    engine = make_engine(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.resume_jobs_on_start and settings.runs_jobs_in_api:
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

    # Outermost after error handling: the key is checked and the body counted before any route.
    app.add_middleware(RequestGuard, upload_limit=settings.max_upload_bytes)

    app.include_router(health.router)
    for area in (catalog, policy, fingerprint, clearance, export, provenance, softbinding, audit):
        app.include_router(area.router)
    console.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    install_openapi(app)
    return app
