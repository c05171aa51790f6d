"""Schemathesis over the app's own OpenAPI document, with an admin, a legal, an ml and a partner
key (issue 13): every operation, bounded examples, a fixed seed. Any 500, any status the document
does not list, any body that breaks its response schema fails the test.

The app runs in-process (ASGI) on a SQLite database seeded with a rightsholder, a franchise, an
asset, a licence and a finished clearance job, so that ids such as 1 sometimes name real rows.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from registry import catalog, clearance
from registry.access import Role, create_api_key
from registry.db import session_scope
from registry.settings import Settings
from tests.photos import skimage_photo

# Generated cases per operation and role, on top of the explicit examples and the call on the
# seeded rows: 2 x 4 roles = 8 per operation (generation is most of this test's time).
EXAMPLES_PER_ROLE = 2
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _jpeg(name: str = "coffee.png") -> bytes:
    image = Image.open(skimage_photo(name)).convert("RGB")
    image.thumbnail((96, 96))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("contract")
    allowed = root / "allowed"
    (allowed / "photos").mkdir(parents=True)
    (allowed / "photos" / "a.jpg").write_bytes(_jpeg("camera.png"))
    policies = root / "policies"
    policies.mkdir()
    app = create_app(Settings(home=root / "home", database_url=f"sqlite:///{root / 'c.db'}",
                              max_upload_bytes=2 * 1024 * 1024, allowed_roots=[allowed],
                              policies_dir=policies, resume_jobs_on_start=False))
    keys = {}
    factory = app.state.session_factory
    with session_scope(factory) as session:
        for role in Role:
            _, plain = create_api_key(session, name=f"contract-{role.value}", role=role.value)
            keys[role.value] = {"Authorization": f"Bearer {plain}"}
        holder = catalog.create_rightsholder(session, name="Harbor")
        catalog.create_franchise(session, name="Skyreach", rightsholder=holder)
        catalog.register_asset(session, store=app.state.store, data=_jpeg(), name="c.jpg",
                               rightsholder=holder)
        catalog.create_licence(session, name="l1", licensor=holder, licensee="Lumen AI")
    clearance.clear_dataset(factory, allowed / "photos", use="ai_training", licensee="Lumen AI",
                            owner="seed", policies=None, database_url=app.state.settings
                            .resolved_database_url, index_dir=root / "home" / "index",
                            fingerprint=False)
    yield app, keys
    app.state.engine.dispose()


def _run(operation: Any, headers: dict[str, str]) -> None:
    @settings(max_examples=EXAMPLES_PER_ROLE, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def _run_on_seeded_rows(operation: Any, headers: dict[str, str]) -> None:
    """One call with every path id set to 1 (the seeded rows), so that 2xx answers of every
    operation are checked too, not only the errors random ids provoke."""
    names = [p.name for p in operation.path_parameters]
    if not names:
        return
    case = operation.Case(path_parameters=dict.fromkeys(names, "1"))
    case.call_and_validate(headers=headers, checks=CHECKS)


@pytest.mark.slow
def test_every_operation_answers_as_documented_for_every_role(
    seeded: tuple[FastAPI, dict[str, Any]],
) -> None:
    app, keys = seeded
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:
        for role, headers in keys.items():
            try:
                _run_on_seeded_rows(operation, headers)
                _run(operation, headers)
            except Exception as exc:  # collect every operation's failure, then report them all
                first = str(exc).strip().splitlines()[:12]
                failures.append(f"{operation.label} as {role}:\n  " + "\n  ".join(first))
    assert not failures, "\n\n".join(failures)


def test_the_document_declares_the_bearer_scheme_and_error_statuses(
    seeded: tuple[FastAPI, dict[str, Any]],
) -> None:
    app, _ = seeded
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                assert operation["security"] == [{"bearer": []}], (method, path)
                assert {"401", "403", "422"} <= set(operation["responses"]), (method, path)
