"""An app per test on this test's database (SQLite or PostgreSQL), and one API key per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from registry.access import Role, create_api_key
from registry.db import session_scope
from registry.settings import Settings


@pytest.fixture
def settings(home: Path, db_url: str) -> Settings:
    # The API runs the jobs it accepts itself (its embedded worker), on PostgreSQL too.
    return Settings(home=home, database_url=db_url, embedded_worker=True,
                    max_upload_bytes=2 * 1024 * 1024)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def keys(client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers per role: keys["legal"] -> {"Authorization": "Bearer ..."}."""
    out = {}
    with session_scope(client.app.state.session_factory) as session:
        for role in Role:
            _, plain = create_api_key(session, name=f"test-{role.value}", role=role.value)
            out[role.value] = {"Authorization": f"Bearer {plain}"}
    return out
