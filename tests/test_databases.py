"""The PostgreSQL test databases (tests/conftest.py, PgDatabases): a database that a test gave
back and that is handed out again is at the migrated template's state, under a new name; one
whose schema a test changed is replaced by a new copy of the template."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import PgDatabases, _pg_url


def _connect(name: str) -> psycopg.Connection:
    return psycopg.connect(_pg_url(name).replace("postgresql+psycopg://", "postgresql://"),
                           autocommit=True)


def _state(name: str) -> tuple[object, ...]:
    with _connect(name) as conn:
        return (conn.execute("SELECT count(*) FROM rightsholders").fetchone(),
                conn.execute("SELECT version_num FROM alembic_version").fetchall(),
                conn.execute("SELECT id, seq, hash FROM audit_head").fetchall(),
                conn.execute("SELECT last_value, is_called FROM rightsholders_id_seq").fetchone())


def test_a_used_database_comes_back_at_the_template_state_under_a_new_name(
    pg_template: str,
) -> None:
    databases = PgDatabases(pg_template)
    try:
        first = databases.take()  # the first is a new copy of the template
        template_state = _state(first)
        with _connect(first) as conn:
            conn.execute("INSERT INTO rightsholders (name, created_at) VALUES ('a', now()), "
                         "('b', now())")
            conn.execute("UPDATE audit_head SET seq = 7, hash = repeat('f', 64)")
            leftover = _connect(first)  # a connection the test left open
        databases.give_back(first)
        second = databases.take()
        assert second != first
        assert _is_terminated(leftover)
        with pytest.raises(psycopg.OperationalError):
            _connect(first)  # the old name is gone: nothing left behind can write to it
        assert _state(second) == template_state
        with _connect(second) as conn:  # ids start again where a new copy's start
            new_id = conn.execute("INSERT INTO rightsholders (name, created_at) "
                                  "VALUES ('c', now()) RETURNING id").fetchone()
        assert new_id == (1,)
    finally:
        databases.close()


def _is_terminated(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_a_database_whose_schema_a_test_changed_is_replaced_by_a_new_copy(
    pg_template: str,
) -> None:
    databases = PgDatabases(pg_template)
    try:
        first = databases.take()
        template_state = _state(first)
        with _connect(first) as conn:
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.execute("INSERT INTO rightsholders (name, created_at) VALUES ('a', now())")
        databases.give_back(first)
        second = databases.take()
        with _connect(second) as conn:
            enabled = conn.execute("SELECT DISTINCT tgenabled::text FROM pg_trigger "
                                   "WHERE tgrelid = 'audit_events'::regclass "
                                   "AND NOT tgisinternal").fetchall()
        assert enabled == [("O",)]
        assert _state(second) == template_state
    finally:
        databases.close()
