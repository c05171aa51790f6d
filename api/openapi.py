"""The OpenAPI document: FastAPI's, plus what it cannot infer.

- every `/v1` operation declares the bearer scheme (an API key in `Authorization: Bearer ...`);
- every operation lists the error statuses our handlers answer (api/errors.py, api/limits.py),
  each with the one error body `{"error": {"code", "message", "detail"}}` (FastAPI's default 422
  schema, `{"detail": [...]}`, is not what we send, so it is replaced).

`make test` runs schemathesis over this document with a key of every role
(tests/api/test_openapi_contract.py): an answer it does not list is a test failure.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "detail": {},
            },
        },
    },
}
ERROR_STATUSES = {
    "400": "Malformed request (bad JSON, NaN/Infinity, invalid Content-Length)",
    "401": "Missing, unknown or revoked API key",
    "403": "The key's role may not do this",
    "404": "Not found",
    "409": "Conflict with the current state",
    "413": "Body, file or image over the limit",
    "415": "Unsupported media",
    "422": "Invalid input, with the reason",
    "429": "Too many requests: retry after Retry-After seconds",
    "503": "Too many media decodes in progress: retry after Retry-After seconds",
    "507": "The registry's storage is full: nothing was written",
}
PUBLIC_ERRORS = ("400", "404", "413", "422")


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An API key: `Authorization: Bearer ch_...`"},
        }
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                secured = path.startswith("/v1/")
                if secured:
                    operation["security"] = [{"bearer": []}]
                responses = operation.setdefault("responses", {})
                for status in ERROR_STATUSES if secured else PUBLIC_ERRORS:
                    responses[status] = {
                        "description": ERROR_STATUSES[status],
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}}},
                    }
        schemas = components["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
