"""Append-only, hash-chained audit log of every decision and change: who, when, what, why.

Each entry holds `seq` (1, 2, 3, ... with no gap), the hash of the entry before it (`prev_hash`),
and its own `entry_hash` = sha256 over `prev_hash` and the entry's canonical JSON (seq, time,
actor name, key id and role, action, subject, detail). The single row of `audit_head` holds the last
seq and hash. So:
- an edited entry no longer matches its hash; a deleted one leaves a gap in `seq`; a forged one
  breaks the chain after it; a cut-off tail disagrees with the head: `verify_log` finds each;
- the database refuses UPDATE and DELETE on `audit_events` (triggers, migration 0006), so the log
  is append-only for the application's own connections too;
- writers are serialised by the head row (`UPDATE audit_head ... RETURNING` takes its lock until
  the transaction ends), so two transactions never chain onto the same entry.

Services record their own events (the API and the CLI leave the same trail), naming the actor by
name, API key id and role (`Actor`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.db import Base, UtcDateTime, utcnow

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who acts: a name, and for API callers the key's id and role (`cli` for the command line)."""

    name: str
    key_id: int | None = None
    role: str | None = None


SYSTEM = Actor("system", role="system")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer, unique=True, default=None)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor_role: Mapped[str | None] = mapped_column(String(16), default=None)
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    entry_hash: Mapped[str | None] = mapped_column(String(64), default=None)


class AuditHead(Base):
    """One row (id 1): the last entry's seq and hash."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


def _canonical(value: Any) -> Any:
    """JSON-native copy of `value` (dates and other objects as strings), as stored and hashed."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def entry_hash(prev_hash: str, *, seq: int, at: dt.datetime, actor: str, actor_key_id: int | None,
               actor_role: str | None, action: str, subject: str, detail: Any) -> str:
    body = {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "actor_key_id": actor_key_id,
        "actor_role": actor_role,
        "action": action,
        "subject": subject,
        "detail": detail,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


def _hash_of(event: AuditEvent) -> str:
    return entry_hash(event.prev_hash or "", seq=event.seq or 0, at=event.at, actor=event.actor,
                      actor_key_id=event.actor_key_id, actor_role=event.actor_role,
                      action=event.action, subject=event.subject, detail=event.detail)


def as_actor(actor: Actor | str) -> Actor:
    return actor if isinstance(actor, Actor) else Actor(actor)


def record(
    session: Session, *, actor: Actor | str, action: str, subject: str, **detail: Any
) -> AuditEvent:
    """Append one entry to the chain (inside the caller's transaction: it is kept only if the
    transaction commits, and the head row stays locked until then)."""
    who = as_actor(actor)
    head = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
    ).one_or_none()
    if head is None:  # a database made before migration 0006 ran: never here after migrate()
        raise RuntimeError("audit_head is missing: run the migrations")
    seq, prev = int(head[0]), str(head[1])
    at = utcnow()
    clean = _canonical(detail)
    digest = entry_hash(prev, seq=seq, at=at, actor=who.name[:200], actor_key_id=who.key_id,
                        actor_role=who.role, action=action, subject=subject[:200], detail=clean)
    event = AuditEvent(seq=seq, at=at, actor=who.name[:200], actor_key_id=who.key_id,
                       actor_role=who.role, action=action, subject=subject[:200], detail=clean,
                       prev_hash=prev, entry_hash=digest)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest))
    session.flush()
    return event


def events(
    session: Session, *, subject: str | None = None, action: str | None = None,
    limit: int = 100, before_seq: int | None = None,
) -> list[AuditEvent]:
    """Newest first; `before_seq` pages back through the log."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditEvent.subject == subject)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    return list(session.scalars(query))


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq, "at": event.at.isoformat(), "actor": event.actor,
        "actor_key_id": event.actor_key_id, "actor_role": event.actor_role,
        "action": event.action, "subject": event.subject, "detail": event.detail,
        "prev_hash": event.prev_hash, "entry_hash": event.entry_hash,
    }


@dataclass
class LogCheck:
    """What `verify_log` found: `ok` when every entry and the head agree."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": {"seq": self.head_seq,
                "hash": self.head_hash}, "problems": self.problems}


def _walk(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    last = None
    while True:
        query = select(AuditEvent).order_by(AuditEvent.seq.asc().nulls_first(),
                                            AuditEvent.id).limit(batch)
        if last is not None:
            query = query.where(AuditEvent.seq > last)
        rows = list(session.scalars(query))
        if not rows:
            return
        yield from rows
        if rows[-1].seq is None:
            return
        last = rows[-1].seq


def verify_log(session: Session) -> LogCheck:
    """Walk the whole chain and report every entry that was edited, removed, forged or
    reordered, and a head that does not match the last entry."""
    head = session.get(AuditHead, 1)
    check = LogCheck(head_seq=head.seq if head else 0,
                     head_hash=head.hash if head else GENESIS_HASH)
    expected_seq, prev = 1, GENESIS_HASH
    for event in _walk(session):
        check.entries += 1
        where = {"seq": event.seq, "id": event.id, "action": event.action}
        if event.seq is None:
            check.problems.append({**where, "problem": "entry outside the chain (no seq)"})
            continue
        if event.seq != expected_seq:
            check.problems.append({**where, "problem": f"entries {expected_seq}..{event.seq - 1} "
                                   "are missing (deleted)" if event.seq > expected_seq else
                                   "entry out of order"})
        if event.prev_hash != prev:
            check.problems.append({**where, "problem": "does not chain onto the entry before it "
                                   "(an entry before it was removed, changed or forged)"})
        if _hash_of(event) != event.entry_hash:
            check.problems.append({**where, "problem": "content does not match its hash "
                                   "(the entry was edited)"})
        expected_seq, prev = event.seq + 1, event.entry_hash or ""
    if expected_seq - 1 != check.head_seq or prev != check.head_hash:
        check.problems.append({"seq": check.head_seq, "problem": f"the head says {check.head_seq} "
                               f"entries ending in {check.head_hash[:12]}, the log has "
                               f"{expected_seq - 1} ending in {prev[:12]} (entries removed from "
                               "the end, or the head was changed)"})
    return check
