"""Catalog services: rightsholders, franchises, assets and licences.

Functions take a Session first and never commit. `get_*` raises NotFound, `find_*` returns None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.audit import SYSTEM, Actor, record
from registry.catalog.blobs import BlobStore, sha256_bytes
from registry.catalog.models import Asset, AssetTag, Franchise, Licence, Rightsholder
from registry.db import parse_row_id
from registry.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from registry.media import Probed, probe
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

MAX_PAGE_SIZE = 500


def _clean_name(kind: str, name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200:
        raise InvalidInput(f"{kind} name must be 1-200 characters, got {name!r}")
    return cleaned


def clean_tags(tags: Sequence[str]) -> list[str]:
    out = sorted({t.strip().lower() for t in tags if t.strip()})
    for tag in out:
        if len(tag) > 100:
            raise InvalidInput(f"tag {tag[:20]!r}... is longer than 100 characters")
    return out


# --- rightsholders -------------------------------------------------------------------------------


def find_rightsholder(session: Session, name: str) -> Rightsholder | None:
    return session.scalar(select(Rightsholder).where(Rightsholder.name == name.strip()))


def get_rightsholder(session: Session, key: int | str) -> Rightsholder:
    row = (
        session.get(Rightsholder, key) if isinstance(key, int) else find_rightsholder(session, key)
    )
    if row is None:
        raise NotFound("rightsholder", key)
    return row


def create_rightsholder(
    session: Session, *, name: str, actor: Actor | str = SYSTEM
) -> Rightsholder:
    name = _clean_name("rightsholder", name)
    if find_rightsholder(session, name) is not None:
        raise AlreadyExists("rightsholder", name)
    row = Rightsholder(name=name)
    session.add(row)
    session.flush()
    record(session, actor=actor, action="rightsholder.create", subject=f"rightsholder:{row.id}",
           name=name)
    return row


def ensure_rightsholder(
    session: Session, *, name: str, actor: Actor | str = SYSTEM
) -> Rightsholder:
    return find_rightsholder(session, name) or create_rightsholder(session, name=name,
                                                                   actor=actor)


def list_rightsholders(session: Session) -> list[Rightsholder]:
    return list(session.scalars(select(Rightsholder).order_by(Rightsholder.name)))


# --- franchises ----------------------------------------------------------------------------------


def find_franchise(session: Session, name: str) -> Franchise | None:
    return session.scalar(select(Franchise).where(Franchise.name == name.strip()))


def get_franchise(session: Session, key: int | str) -> Franchise:
    row = session.get(Franchise, key) if isinstance(key, int) else find_franchise(session, key)
    if row is None:
        raise NotFound("franchise", key)
    return row


def create_franchise(
    session: Session, *, name: str, rightsholder: Rightsholder, actor: Actor | str = SYSTEM
) -> Franchise:
    name = _clean_name("franchise", name)
    if find_franchise(session, name) is not None:
        raise AlreadyExists("franchise", name)
    row = Franchise(name=name, rightsholder=rightsholder)
    session.add(row)
    session.flush()
    record(session, actor=actor, action="franchise.create", subject=f"franchise:{row.id}",
           name=name, rightsholder=rightsholder.id)
    return row


def ensure_franchise(
    session: Session, *, name: str, rightsholder: Rightsholder, actor: Actor | str = SYSTEM
) -> Franchise:
    row = find_franchise(session, name)
    if row is None:
        return create_franchise(session, name=name, rightsholder=rightsholder, actor=actor)
    if row.rightsholder_id != rightsholder.id:
        raise Conflict(
            f"franchise {row.name!r} belongs to {row.rightsholder.name!r}, "
            f"not {rightsholder.name!r}"
        )
    return row


def list_franchises(session: Session, *, rightsholder_id: int | None = None) -> list[Franchise]:
    query = select(Franchise).order_by(Franchise.name)
    if rightsholder_id is not None:
        query = query.where(Franchise.rightsholder_id == rightsholder_id)
    return list(session.scalars(query))


# --- assets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetFilter:
    franchise_id: int | None = None
    rightsholder_id: int | None = None
    tag: str | None = None
    kind: str | None = None
    q: str | None = None  # substring of the title


def find_asset_by_sha256(session: Session, sha256: str) -> Asset | None:
    return session.scalar(select(Asset).where(Asset.sha256 == sha256.lower()))


def get_asset(session: Session, key: int | str) -> Asset:
    """An asset by id, or by sha256 when given a 64-character hex string."""
    row_id = parse_row_id(key)
    row = (
        find_asset_by_sha256(session, key)
        if isinstance(key, str) and len(key) == 64
        else session.get(Asset, row_id)
        if row_id is not None
        else None
    )
    if row is None:
        raise NotFound("asset", key)
    return row


def list_assets(
    session: Session, *, where: AssetFilter | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[Asset], int]:
    """One page of assets (newest id last) and the total that match the filter."""
    if not 0 < limit <= MAX_PAGE_SIZE or offset < 0:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE_SIZE} and offset >= 0")
    query = select(Asset)
    f = where or AssetFilter()
    if f.franchise_id is not None:
        query = query.where(Asset.franchise_id == f.franchise_id)
    if f.rightsholder_id is not None:
        query = query.where(Asset.rightsholder_id == f.rightsholder_id)
    if f.kind is not None:
        query = query.where(Asset.kind == f.kind)
    if f.q:
        query = query.where(Asset.title.ilike(f"%{f.q}%"))
    if f.tag:
        query = query.where(
            Asset.id.in_(select(AssetTag.asset_id).where(AssetTag.tag == f.tag.lower()))
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Asset.id).offset(offset).limit(limit)).unique()
    return list(rows), total


def register_asset(
    session: Session,
    *,
    store: BlobStore,
    data: bytes,
    name: str,
    rightsholder: Rightsholder,
    franchise: Franchise | None = None,
    title: str | None = None,
    tags: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    actor: Actor | str = SYSTEM,
    probed: Probed | None = None,
) -> tuple[Asset, bool]:
    """Validate and register `data` as an asset; returns (asset, created).

    The same bytes registered again return the existing asset with created=False (new tags are
    added to it). Raises AlreadyExists when a concurrent transaction registered the same bytes
    first: roll back and call again to get its asset. Invalid media raises before anything is
    written; the blob written here is removed again if the caller's transaction rolls back.
    `probed`: a worker's validation of the same bytes (`Probed.vouches_for`), used instead of
    decoding them again.
    """
    digest = sha256_bytes(data)
    existing = find_asset_by_sha256(session, digest)
    if existing is not None:
        have = set(existing.tags)
        for tag in clean_tags(tags):
            if tag not in have:
                existing.tag_rows.append(AssetTag(tag=tag))
        session.flush()
        return existing, False
    if probed is not None and probed.vouches_for(digest, max_bytes=max_bytes,
                                                 max_pixels=max_pixels):
        info = probed.info
    else:
        info = probe(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)
    if franchise is not None and franchise.rightsholder_id != rightsholder.id:
        raise Conflict(f"franchise {franchise.name!r} does not belong to {rightsholder.name!r}")
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    asset = Asset(
        kind=info.kind,
        title=(title or base.rsplit(".", 1)[0] or digest[:12])[:500],
        sha256=digest,
        size_bytes=len(data),
        width=info.width,
        height=info.height,
        duration_s=info.duration_s,
        media_type=info.media_type,
        blob_path=store.relative_path(digest),
        original_name=base[:500],
        rightsholder=rightsholder,
        franchise=franchise,
        tag_rows=[AssetTag(tag=t) for t in clean_tags(tags)],
    )
    session.add(asset)
    try:
        session.flush()
    except IntegrityError as exc:
        # Another transaction registered the same bytes at the same moment and won the unique
        # sha256. No savepoint here (pysqlite's savepoints commit the outer transaction): the
        # caller rolls back and registers again, which finds the winner's row.
        raise AlreadyExists("asset", digest) from exc
    store.put(session, data, digest)
    record(session, actor=actor, action="asset.create", subject=f"asset:{asset.id}",
           sha256=digest, rightsholder=rightsholder.id, name=base[:200])
    return asset, True


def set_asset_tags(session: Session, asset: Asset, tags: Sequence[str]) -> Asset:
    asset.tag_rows = [AssetTag(tag=t) for t in clean_tags(tags)]
    session.flush()
    return asset


# --- licences ------------------------------------------------------------------------------------


def create_licence(
    session: Session,
    *,
    name: str,
    licensor: Rightsholder,
    licensee: str,
    scope: dict[str, Any] | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    territories: Sequence[str] = (),
    model_families: Sequence[str] = (),
    policy_file: str | None = None,
    notes: str | None = None,
    actor: Actor | str = SYSTEM,
) -> Licence:
    name = _clean_name("licence", name)
    if not licensee.strip():
        raise InvalidInput("licensee must not be empty (use '*' for any licensee)")
    if valid_from and valid_to and valid_to < valid_from:
        raise InvalidInput(
            f"licence {name!r}: valid_to {valid_to} is before valid_from {valid_from}"
        )
    if session.scalar(select(Licence).where(Licence.name == name)) is not None:
        raise AlreadyExists("licence", name)
    row = Licence(
        name=name,
        licensor=licensor,
        licensee=licensee.strip(),
        scope=scope or {},
        valid_from=valid_from,
        valid_to=valid_to,
        territories=list(territories),
        model_families=list(model_families),
        policy_file=policy_file,
        notes=notes,
    )
    session.add(row)
    session.flush()
    record(session, actor=actor, action="licence.create", subject=f"licence:{row.id}",
           name=name, licensee=row.licensee)
    return row


def get_licence(session: Session, key: int | str) -> Licence:
    row = (
        session.get(Licence, key)
        if isinstance(key, int)
        else session.scalar(select(Licence).where(Licence.name == key))
    )
    if row is None:
        raise NotFound("licence", key)
    return row


def list_licences(
    session: Session, *, licensee: str | None = None, licensor_id: int | None = None
) -> list[Licence]:
    query = select(Licence).order_by(Licence.name)
    if licensee is not None:
        query = query.where(Licence.licensee == licensee)
    if licensor_id is not None:
        query = query.where(Licence.licensor_id == licensor_id)
    return list(session.scalars(query).unique())
