"""Shared fixtures: a fresh, migrated database per test on real SQLite and real PostgreSQL.

Alembic runs once per session (per pytest-xdist worker) into a template (a SQLite file, a
PostgreSQL template database). Each SQLite test gets its own copy of the file. Each PostgreSQL test
gets a database at the template's state that no other test is using: a copy (CREATE DATABASE ...
TEMPLATE), or one a test gave back, renamed and reset to the template's state (PgDatabases says
how, and when it is a new copy instead). So tests are isolated even when they run the CLI in a
subprocess or kill a worker. PostgreSQL is found at
CLEARHOUSE_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test); where it is
absent, the PostgreSQL half of every database test is skipped with a loud warning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from registry.catalog import BlobStore
from registry.db import make_engine, make_session_factory, migrate


def _keep_bytecode() -> None:
    """Where PYTHONDONTWRITEBYTECODE is set, every Python process the suite starts (each CLI
    run, worker, spawned pool process and Ray worker) compiles every module it imports from
    source again: about 1.5 s per process here. Keep the compiled files for this run and the next,
    outside the source tree: under the venv (PYTHONPYCACHEPREFIX), for this process and its
    children. An explicit PYTHONPYCACHEPREFIX is kept."""
    if not os.environ.pop("PYTHONDONTWRITEBYTECODE", None) and not sys.dont_write_bytecode:
        return
    prefix = os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(sys.prefix) / "pycache"))
    sys.dont_write_bytecode = False
    sys.pycache_prefix = prefix


_keep_bytecode()

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
PG_ADMIN_URL = os.environ.get(
    "CLEARHOUSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_PG_STATE: dict[str, object] = {}


def _pg_connect() -> object | None:
    try:
        import psycopg

        dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
        return psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except Exception as exc:  # any failure means "no PostgreSQL here"
        _PG_STATE["error"] = str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
        return None


def pytest_configure(config: pytest.Config) -> None:
    conn = _pg_connect()
    _PG_STATE["available"] = conn is not None
    if conn is not None:
        conn.close()
    else:
        banner = "!" * 78
        msg = (
            f"\n{banner}\n!! PostgreSQL is NOT reachable at {PG_ADMIN_URL}: "
            f"{_PG_STATE.get('error')}\n!! Every PostgreSQL test will be SKIPPED. "
            f"Run `make test` (it starts PostgreSQL) or set CLEARHOUSE_TEST_PG.\n{banner}\n"
        )
        sys.stderr.write(msg)
        config._clearhouse_pg_banner = msg


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    msg = getattr(config, "_clearhouse_pg_banner", None)
    if msg:
        terminalreporter.write_line(msg, red=True, bold=True)


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not _PG_STATE.get("available"):
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {_PG_STATE.get('error')}")
    name = f"ch_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = _pg_connect()
    assert conn is not None
    conn.execute(f'CREATE DATABASE "{name}"')
    migrate(_pg_url(name))
    yield name
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# Everything about a database's schema that a test could change and emptying its tables would not
# put back: tables, columns, indexes, constraints, triggers (and whether they are enabled),
# functions, sequences, schemas, extensions, per-database settings.
_SCHEMA_SIGNATURE = """
SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
  SELECT 'c:' || table_schema || '.' || table_name || '.' || column_name || ':' || data_type
         || ':' || coalesce(column_default, '') || ':' || is_nullable
    FROM information_schema.columns
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'r:' || n.nspname || '.' || c.relname || ':' || c.relkind::text || ':'
         || coalesce(c.relacl::text, '')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  UNION ALL SELECT 'i:' || indexdef FROM pg_indexes WHERE schemaname <> 'pg_catalog'
  UNION ALL SELECT 't:' || tgrelid::regclass::text || ':' || tgname || ':' || tgenabled::text
         || ':' || tgfoid::regprocedure::text
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'k:' || conrelid::regclass::text || ':' || conname || ':'
         || pg_get_constraintdef(oid)
    FROM pg_constraint
    WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL SELECT 'f:' || p.oid::regprocedure::text || ':' || md5(p.prosrc)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'q:' || schemaname || '.' || sequencename || ':' || data_type::text || ':'
         || increment_by || ':' || min_value || ':' || max_value || ':' || cycle
    FROM pg_sequences
  UNION ALL SELECT 'n:' || nspname FROM pg_namespace
  UNION ALL SELECT 'e:' || extname || ':' || extversion FROM pg_extension
  UNION ALL SELECT 'd:' || coalesce(setconfig::text, '') FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) s(x)
"""


@dataclass(frozen=True)
class _TemplateState:
    """What a database at the template's state holds: its schema signature, the rows the
    migrations wrote (alembic_version, audit_head), every sequence's value."""

    signature: str
    tables: list[str]
    rows: dict[str, tuple[list[str], list[Any]]]
    sequences: dict[str, tuple[int, bool]]


def _template_state(url: str) -> _TemplateState | None:
    """None when a used database cannot be brought back to this state by emptying its tables
    (a materialized view)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        if conn.execute("SELECT count(*) FROM pg_matviews").fetchone()[0]:
            return None
        signature = conn.execute(_SCHEMA_SIGNATURE).fetchone()[0]
        tables = [r[0] for r in conn.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]
        rows = {}
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table}")
            found = cursor.fetchall()
            if found:
                rows[table] = ([sql.Identifier(c.name).as_string(conn)
                                for c in cursor.description or []], found)
        sequences = {}
        for (name,) in conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) "
                "FROM pg_sequences").fetchall():
            last, called = conn.execute(f"SELECT last_value, is_called FROM {name}").fetchone() \
                or (1, False)
            sequences[name] = (int(last), bool(called))
    return _TemplateState(signature, tables, rows, sequences)


class PgDatabases:
    """Databases for the PostgreSQL tests, each at the migrated template's state when a test
    gets it, none used by two tests at once.

    The first one is a copy of the template (CREATE DATABASE ... TEMPLATE). A copy and its DROP
    cost the server 0.3 s to more than a second each time (DROP DATABASE forces a checkpoint,
    which also writes out every other fresh copy's pages), so a database that a test gives back
    is reset and used again when that is exact: every connection to it is ended and it is
    renamed (a process the test left behind cannot reach it under its old name), its schema
    signature must equal the template's, and then, in one transaction with triggers off, every
    table is emptied, the template's rows are put back and every sequence is set back to the
    template's value. A database whose schema differs (a test dropped a trigger), or that
    cannot be reset, is dropped and a new copy made. This runs in a background thread while the
    next tests run.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self.state = _template_state(_pg_url(template))
        conn = _pg_connect()
        assert conn is not None
        self._conn: Any = conn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pg-databases")
        self._next: Future[str] | None = None
        self._left: list[str] = []

    def _create(self) -> str:
        name = f"ch_t_{uuid.uuid4().hex[:12]}"
        self._conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop(self, name: str) -> None:
        try:
            self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # said at the end of the run; the tests are not affected
            self._left.append(f"{name}: {exc}")

    def _reset(self, name: str) -> str:
        """`name` brought back to the template's state under a new name, or a new copy."""
        import psycopg

        if self.state is None:
            self._drop(name)
            return self._create()
        fresh = f"ch_t_{uuid.uuid4().hex[:12]}"
        try:
            self._conn.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                               "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            self._conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{fresh}"')
        except Exception:
            self._drop(name)
            return self._create()
        try:
            with psycopg.connect(_pg_url(fresh).replace("postgresql+psycopg://",
                                                        "postgresql://")) as conn:
                if conn.execute(_SCHEMA_SIGNATURE).fetchone()[0] != self.state.signature:
                    raise LookupError("the schema differs from the template's")
                conn.execute("SET LOCAL session_replication_role = replica")
                for table in self.state.tables:
                    conn.execute(f"DELETE FROM {table}")
                for table, (columns, rows) in self.state.rows.items():
                    marks = ", ".join(["%s"] * len(columns))
                    with conn.cursor() as cursor:
                        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                           f"VALUES ({marks})", rows)
                for sequence, (last, called) in self.state.sequences.items():
                    conn.execute("SELECT setval(%s, %s, %s)", (sequence, last, called))
            return fresh
        except Exception:
            self._drop(fresh)
            return self._create()

    def take(self) -> str:
        """A database at the template's state: the one reset (or made) for the next test."""
        ready, self._next = self._next, None
        return (ready or self._thread.submit(self._create)).result()

    def give_back(self, name: str) -> None:
        """Reset `name` for the next test, in the background."""
        self._next = self._thread.submit(self._reset, name)

    def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):
                self._drop(self._next.result())
        self._thread.shutdown(wait=True)
        self._conn.close()
        if self._left:
            warnings.warn("test databases not dropped: " + "; ".join(self._left), stacklevel=1)


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[PgDatabases]:
    databases = PgDatabases(pg_template)
    yield databases
    databases.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database at the current schema, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "clearhouse.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    name = databases.take()
    try:
        yield _pg_url(name)
    finally:
        databases.give_back(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s
        s.rollback()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def store(home: Path) -> BlobStore:
    return BlobStore(home / "blobs")


@pytest.fixture
def clearhouse_env(home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for the CLI and the app: this test's home and database."""
    from registry.settings import get_settings

    env = {"CLEARHOUSE_HOME": str(home), "CLEARHOUSE_DATABASE_URL": db_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()
