"""Console sessions: sign in with an API key, get an opaque session token, sign out to end it.

The browser holds `token` (256 random bits) and never the API key. The row is found by the token's
sha256; a session ends at logout, after `SESSION_IDLE` without a request, after `SESSION_LIFETIME`
in all, or as soon as its API key is revoked. Each session carries its own CSRF token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.models import ApiKey, ConsoleSession
from registry.db import utcnow

SESSION_LIFETIME = dt.timedelta(hours=8)  # a working day, then sign in again
SESSION_IDLE = dt.timedelta(hours=1)
# last_seen_at is written at most this often, so reading pages is not a write per request.
TOUCH_EVERY = dt.timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, *, key: ApiKey, now: dt.datetime | None = None
) -> tuple[ConsoleSession, str]:
    """A new session for `key`; returns the row and the plain token for the cookie."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=_digest(token),
        api_key_id=key.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row, token


def find_session(
    session: Session, token: str | None, *, now: dt.datetime | None = None
) -> tuple[ConsoleSession, ApiKey] | None:
    """The live session for `token` and its key, or None (unknown, ended, expired, idle too
    long, or its key revoked)."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = session.get(ConsoleSession, _digest(token))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    if now - row.last_seen_at > SESSION_IDLE:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.id == row.api_key_id))
    if key is None or key.revoked_at is not None:
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return row, key


def end_session(session: Session, token: str | None, *, now: dt.datetime | None = None) -> bool:
    """End the session of `token` (logout); False when there was none to end."""
    if not token or len(token) > 200:
        return False
    row = session.get(ConsoleSession, _digest(token))
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = now or utcnow()
    session.flush()
    return True
