"""The only place that knows how registry errors become HTTP responses.

Every error answers `{"error": {"code": ..., "message": ..., "detail": ...}}`. Bad input is a 4xx
with a reason; a 500 means a bug of ours.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import (
    AlreadyExists,
    Conflict,
    CorruptMedia,
    Forbidden,
    InvalidInput,
    MediaTooLarge,
    NotFound,
    ProvenanceError,
    RegistryError,
    StorageError,
    Unauthorized,
    UnsupportedMedia,
)
from registry.provenance.errors import InvalidSoftBinding

log = logging.getLogger("clearhouse.api")
SPEC_400_TAG = "soft binding resolution"

STATUS_FOR: dict[type[RegistryError], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    MediaTooLarge: 413,
    UnsupportedMedia: 415,
    CorruptMedia: 422,
    InvalidSoftBinding: 400,  # the Soft Binding Resolution API's "invalid query value"
    InvalidInput: 422,
    Unauthorized: 401,
    Forbidden: 403,
    StorageError: 507,
    ProvenanceError: 422,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid_input",
    429: "too_many_requests",
    503: "service_unavailable",
    507: "insufficient_storage",
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": jsonable_encoder(detail)}}


def status_for(exc: RegistryError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 400


async def _registry_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RegistryError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(exc.code, exc.message, exc.detail), status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(error_body("bad_json", "request body is not valid JSON", errors), 400)
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
    # Routes that follow an outside API's error codes (the C2PA Soft Binding Resolution API
    # answers 400 for an invalid query or body) say so with this tag.
    if SPEC_400_TAG in (getattr(request.scope.get("route"), "tags", None) or ()):
        return JSONResponse(error_body("bad_request", message, errors), 400)
    return JSONResponse(error_body("invalid_input", message, errors), 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # A number (or text) the database cannot hold came from the caller: SQLite raises
    # OverflowError for integers over 64 bits, PostgreSQL a DataError ("out of range").
    log.warning("value out of range on %s %s: %s", request.method, request.url.path, exc)
    message = "a value in the request is out of range for the registry"
    return JSONResponse(error_body("invalid_input", message), 422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error (a bug: please report)"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(Exception, _unexpected)
