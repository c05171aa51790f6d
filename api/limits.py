"""What a request may cost before a route runs: the key first, then a body read under a limit.

`RequestGuard` is a plain ASGI middleware (it sees the body as it streams in):
- a request with a body to `/v1/...` must carry a live API key, checked before one byte of the body
  is read (401 otherwise); the route still checks the role;
- the body is counted as it arrives, whatever `Content-Length` says (or does not say, for a chunked
  body): multipart uploads may reach the upload limit, every other body `MAX_PLAIN_BODY_BYTES`;
  over the limit the request ends with 413 and what was read is dropped;
- a JSON body with `NaN` or `Infinity` (which Python's parser accepts and JSON does not) is
  refused with 400 before any route sees it.

`decode_slot()` bounds how many expensive media decodes run at once in this process (match,
verify, thumbnails): a caller waits for a slot, and gets 503 with Retry-After if none frees up.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body, status_for
from registry.access import authenticate
from registry.errors import RegistryError

# JSON and form bodies: the largest legitimate one (a decision batch, a certificate) is far below.
MAX_PLAIN_BODY_BYTES = 2 * 1024 * 1024
# Multipart framing on top of the largest allowed file.
UPLOAD_OVERHEAD_BYTES = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Media decodes in flight per process, and how long a request waits for a slot.
DECODE_SLOTS = 2
DECODE_WAIT_S = 60.0


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is over the limit of {limit} bytes")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _presented_key(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    # Never a cookie (as api.deps.presented_key): the console has its own sessions.
    return _header(scope, b"x-api-key") or None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class RequestGuard:
    """See the module docstring. `upload_limit` is the largest file an upload may carry."""

    def __init__(self, app: ASGIApp, *, upload_limit: int) -> None:
        self.app = app
        self.multipart_limit = upload_limit + UPLOAD_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/v1/"):
            failure = await anyio.to_thread.run_sync(self._check_key, scope)
            if failure is not None:
                await failure(scope, receive, send)
                return
        content_type = (_header(scope, b"content-type") or "").lower()
        multipart = content_type.startswith("multipart/")
        limit = self.multipart_limit if multipart else MAX_PLAIN_BODY_BYTES
        length = _header(scope, b"content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                await JSONResponse(error_body("bad_request", "invalid Content-Length"), 400)(
                    scope, receive, send)
                return
            if int(length) > limit:
                await self._too_large(limit)(scope, receive, send)
                return
        if multipart:
            await self.app(scope, _counting(receive, limit), send)
            return
        # Small bodies: read whole (under the limit), check, then replay to the app.
        try:
            body, more = await _read_all(receive, limit)
        except BodyTooLarge:
            await self._too_large(limit)(scope, receive, send)
            return
        if "json" in content_type and _has_non_finite(body):
            message = "request body is not valid JSON (NaN and Infinity are not JSON numbers)"
            await JSONResponse(error_body("bad_json", message), 400)(scope, receive, send)
            return
        await self.app(scope, _replay(body, more, receive), send)

    def _check_key(self, scope: Scope) -> JSONResponse | None:
        app = scope["app"]
        with app.state.session_factory() as session:
            try:
                authenticate(session, _presented_key(scope))
            except RegistryError as exc:
                status = status_for(exc)
                return JSONResponse(error_body(exc.code, exc.message), status,
                                    headers={"WWW-Authenticate": "Bearer"})
        return None

    @staticmethod
    def _too_large(limit: int) -> JSONResponse:
        message = f"request body is over the limit of {limit} bytes"
        return JSONResponse(error_body("payload_too_large", message), 413,
                            headers={"Connection": "close"})


def _has_non_finite(body: bytes) -> bool:
    try:
        json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        return "is not a JSON number" in str(exc)
    except RecursionError:
        return False  # the route's own parser answers it
    return False


async def _read_all(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def _counting(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                # FastAPI re-raises HTTPExceptions met while parsing a body: the error handlers
                # answer 413, and the rest of the body is never read.
                raise BodyTooLarge(limit)
        return message

    return counted


_DECODES = threading.BoundedSemaphore(DECODE_SLOTS)


class ServerBusy(HTTPException):
    def __init__(self) -> None:
        super().__init__(503, "too many media decodes in progress; retry shortly",
                         headers={"Retry-After": "5"})


@contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of the process's media-decode slots (routes run in threads: this blocks)."""
    if not _DECODES.acquire(timeout=DECODE_WAIT_S):
        raise ServerBusy()
    try:
        yield
    finally:
        _DECODES.release()
