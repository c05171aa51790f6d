"""Request dependencies: the database session (one transaction per request) and the caller's key.

The session commits when the route returns and rolls back when it raises, so a failed request
leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from registry.access import ApiKey, Role, authenticate, require_role
from registry.audit import Actor
from registry.catalog import BlobStore
from registry.db import MAX_ROW_ID
from registry.provenance.repository import ManifestIndex
from registry.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.store
    return store


def get_manifest_index(request: Request) -> ManifestIndex:
    """The app's one in-memory index of the manifest repository (caught up on each lookup)."""
    state = request.app.state
    index: ManifestIndex | None = getattr(state, "manifest_index", None)
    if index is None:
        index = ManifestIndex()
        state.manifest_index = index
    return index


# scope="function": commit before the response is sent, so a failed commit is the client's error
# response, never a 2xx for data that was not stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# Ids in paths and filters: a number no row can have is refused with 422 before any SQL.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
ManifestIndexDep = Annotated[ManifestIndex, Depends(get_manifest_index)]


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    # Never a cookie: the console signs in to a server-side session (api/console/security.py).
    return request.headers.get("x-api-key")


def requires(*roles: Role) -> Callable[[Request, Session], ApiKey]:
    """A dependency that authenticates the caller and checks its role (admin always passes)."""

    def dependency(request: Request, session: SessionDep) -> ApiKey:
        key = authenticate(session, presented_key(request))
        require_role(key, *roles)
        request.state.api_key = key
        return key

    return dependency


def actor_of(key: ApiKey) -> Actor:
    """The audit log's name for an API caller: key name, id and role."""
    return Actor(key.name, key.id, key.role)


ANY_ROLE = (Role.admin, Role.legal, Role.ml, Role.partner)
