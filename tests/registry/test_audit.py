"""The audit log is append-only and hash-chained (issue 13, finding 9): services write it, the
database refuses edits, and `verify_log` finds every edit, deletion and forgery made by someone
who got around the refusal."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from registry import catalog
from registry.access import create_api_key, revoke_api_key
from registry.audit import Actor, AuditEvent, entry_hash, events, record, verify_log
from registry.db import session_scope, utcnow


def _fill(factory: sessionmaker[Session]) -> None:
    anna = Actor("legal-anna", 7, "legal")
    with session_scope(factory) as session:
        holder = catalog.create_rightsholder(session, name="Harbor", actor=anna)
        catalog.create_franchise(session, name="Skyreach", rightsholder=holder, actor=anna)
        _, plain = create_api_key(session, name="ml-bot", role="ml", actor=Actor("ops", role="cli"))
    with session_scope(factory) as session:
        revoke_api_key(session, prefix=plain.split("_")[1], actor="ops")
        record(session, actor=anna, action="note", subject="x", when=utcnow(), n=1.5)


def _unlock(engine: Engine) -> None:
    """What an attacker with the database's owner rights does first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))


def test_services_write_a_chain_that_verifies(session_factory: sessionmaker[Session]) -> None:
    _fill(session_factory)
    with session_factory() as session:
        check = verify_log(session)
        assert check.ok, check.problems
        assert check.entries == check.head_seq == 5
        newest = events(session, limit=10)
    assert [e.action for e in newest] == ["note", "api_key.revoke", "api_key.create",
                                          "franchise.create", "rightsholder.create"]
    assert (newest[-1].actor, newest[-1].actor_key_id, newest[-1].actor_role) == (
        "legal-anna", 7, "legal")
    assert newest[2].actor_role == "cli"
    assert [e.seq for e in newest] == [5, 4, 3, 2, 1]
    assert all(e.prev_hash == o.entry_hash for e, o in itertools.pairwise(newest))


def test_the_database_refuses_to_edit_or_delete_entries(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory)
    for statement in ("UPDATE audit_events SET actor = 'someone-else'",
                      "DELETE FROM audit_events WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(session_factory) as s:
            s.execute(text(statement))
    with session_factory() as session:
        assert verify_log(session).ok


def test_an_edited_entry_is_found(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _fill(session_factory)
    _unlock(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'nobody' WHERE seq = 2"))
    with session_factory() as session:
        check = verify_log(session)
    assert not check.ok
    assert [(p["seq"], "edited" in p["problem"]) for p in check.problems] == [(2, True)]


def test_a_deleted_entry_and_a_cut_tail_are_found(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _fill(session_factory)
    _unlock(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq IN (3, 5)"))
    with session_factory() as session:
        problems = verify_log(session).problems
    text_of = " | ".join(p["problem"] for p in problems)
    assert "entries 3..3 are missing" in text_of
    assert "does not chain" in text_of
    assert "the head says 5 entries" in text_of


def test_a_forged_entry_is_found(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    """A forger who knows the hashing still cannot slot an entry in without breaking the chain
    (or the head) after it."""
    _fill(session_factory)
    _unlock(engine)
    with session_scope(session_factory) as session:
        second = session.scalar(text("SELECT entry_hash FROM audit_events WHERE seq = 2"))
        session.execute(text("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3"))
        at = utcnow()
        forged = entry_hash(second, seq=3, at=at, actor="legal-anna", actor_key_id=7,
                            actor_role="legal", action="clearance.review", subject="clearance:1",
                            detail={"decision": "allowed"})
        session.add(AuditEvent(seq=3, at=at, actor="legal-anna", actor_key_id=7,
                               actor_role="legal", action="clearance.review",
                               subject="clearance:1", detail={"decision": "allowed"},
                               prev_hash=second, entry_hash=forged))
    with session_factory() as session:
        check = verify_log(session)
    assert not check.ok
    assert any("does not chain" in p["problem"] for p in check.problems)
