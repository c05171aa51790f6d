"""Create, check and revoke API keys.

A key reads `ch_<prefix>_<secret>`. The prefix finds the row; the whole key is compared by its
sha256 in constant time. Keys are 256-bit random, so a fast hash is enough (no password stretching).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.models import ApiKey, Role
from registry.audit import SYSTEM, Actor, record
from registry.db import utcnow
from registry.errors import Forbidden, InvalidInput, NotFound, Unauthorized

KEY_PREFIX = "ch"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    session: Session, *, name: str, role: str, actor: Actor | str = SYSTEM
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the plain key, which is shown once and never stored."""
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r} (one of: {', '.join(r.value for r in Role)})"
        ) from None
    prefix = secrets.token_hex(6)
    plain = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, secret_hash=_digest(plain), role=parsed.value)
    session.add(row)
    session.flush()
    record(session, actor=actor, action="api_key.create", subject=f"api_key:{row.prefix}",
           key_id=row.id, role=row.role, name=name)
    return row, plain


def authenticate(session: Session, key: str | None) -> ApiKey:
    """The live key row for `key`.

    Raises Unauthorized when the key is missing, malformed, unknown or revoked.
    """
    if not key:
        raise Unauthorized("missing API key (send it as 'Authorization: Bearer <key>')")
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise Unauthorized("malformed API key")
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(key)):
        raise Unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise Unauthorized("API key has been revoked")
    return row


def require_role(key: ApiKey, *allowed: Role) -> None:
    """Raise Forbidden unless the key's role is one of `allowed` (admin is always allowed)."""
    if key.role == Role.admin or key.role in allowed:
        return
    wanted = ", ".join(r.value for r in allowed) or "admin"
    raise Forbidden(f"role {key.role!r} may not do this (needs: {wanted})")


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, *, prefix: str, actor: Actor | str = SYSTEM) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise NotFound("api key", prefix)
    row.revoked_at = utcnow()
    session.flush()
    record(session, actor=actor, action="api_key.revoke", subject=f"api_key:{prefix}",
           key_id=row.id)
    return row
