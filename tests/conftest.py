"""Shared fixtures: a fresh, migrated database per test on real SQLite and real PostgreSQL.

Alembic runs once per session into a template (a SQLite file, a PostgreSQL template database);
each test gets its own copy (file copy / CREATE DATABASE ... TEMPLATE, about 40 ms), so tests are
isolated even when they run the CLI in a subprocess or kill a worker. PostgreSQL is found at
CLEARHOUSE_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test); where it is
absent, the PostgreSQL half of every database test is skipped with a loud warning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


class PgCopies:
    """Fresh copies of the template database for the tests, each made while the test before runs.

    A copy (CREATE DATABASE ... TEMPLATE) takes about 0.2 s of the server's time. Once a test
    gives its database back, it is dropped at once and the next copy is started in a background
    thread, so it is ready when the next PostgreSQL test asks. The drop comes first on purpose:
    DROP DATABASE forces a checkpoint, which is cheap while no other fresh copy's pages wait to
    be written (about 0.1 s) and costs seconds when one does. Each test still gets a database
    nobody has used, copied from the migrated template.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        conn = _pg_connect()
        assert conn is not None
        self._conn: Any = conn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pg-copies")
        self._ahead: Future[str] | None = None

    def _create(self) -> str:
        name = f"ch_t_{uuid.uuid4().hex[:12]}"
        self._conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop(self, name: str) -> None:
        self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        """A new database's name: the copy made ahead, or one made now."""
        ahead, self._ahead = self._ahead, None
        return (ahead or self._thread.submit(self._create)).result()

    def give_back(self, name: str) -> None:
        """Drop the database (now), then start the next copy."""
        self._thread.submit(self._drop, name).result()
        self._ahead = self._thread.submit(self._create)

    def close(self) -> None:
        if self._ahead is not None:
            with contextlib.suppress(Exception):
                self._drop(self._ahead.result())
        self._thread.shutdown(wait=True)
        self._conn.close()


@pytest.fixture(scope="session")
def pg_copies(pg_template: str) -> Iterator[PgCopies]:
    copies = PgCopies(pg_template)
    yield copies
    copies.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database at the current schema, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "clearhouse.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    copies: PgCopies = request.getfixturevalue("pg_copies")
    name = copies.take()
    try:
        yield _pg_url(name)
    finally:
        copies.give_back(name)


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
