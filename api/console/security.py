"""Console security: sessions, CSRF tokens, the Origin check, security headers, HTML errors.

- Sign-in trades an API key for a server-side session (registry.access.sessions); the cookie
  holds only the opaque session token (HttpOnly, SameSite=Strict, Secure over TLS). /v1 routes
  never read it: they take the key as a bearer token.
- Every unsafe console request must come from this site (Origin, or Referer when a browser sends
  no Origin) and carry the session's CSRF token (form field `csrf_token` or header
  `X-CSRF-Token`, which htmx sends from the page's `hx-headers`). Sign-in itself is protected by
  a double-submit token in a short-lived cookie.
- Console responses carry a strict Content-Security-Policy (no inline script or style) with
  frame-ancestors 'none'.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import SessionDep
from api.errors import status_for
from registry.access import ApiKey, Role, find_session
from registry.errors import Forbidden, RegistryError

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))


def human_size(n: int | None) -> str:
    """1536 -> "1.5 KB"; sizes as people read them."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def shorten_path(path: str | None, width: int = 60) -> str:
    """Long paths shortened from the left, where the part that tells files apart is kept."""
    if not path:
        return "—"
    return path if len(path) <= width else "…" + path[-(width - 1):]


TEMPLATES.env.filters["human_size"] = human_size
TEMPLATES.env.filters["shorten_path"] = shorten_path
SESSION_COOKIE = "clearhouse_session"
LOGIN_CSRF_COOKIE = "clearhouse_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PREFIX = "/console"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Caller:
    """The signed-in user of a console request (plain values: error pages render it after the
    request's transaction has been rolled back)."""

    key_id: int
    name: str
    role: str
    prefix: str
    csrf: str

    @classmethod
    def of(cls, key: ApiKey, csrf: str) -> Caller:
        return cls(key_id=key.id, name=key.name, role=key.role, prefix=key.prefix, csrf=csrf)

    def can(self, *roles: Role) -> bool:
        return self.role == Role.admin.value or self.role in roles

    def require(self, *roles: Role) -> None:
        """Raise Forbidden unless the caller holds one of `roles` (admin always passes)."""
        if not self.can(*roles):
            wanted = ", ".join(r.value for r in roles) or "admin"
            raise Forbidden(f"role {self.role!r} may not do this (needs: {wanted})")


class SignInRequired(Exception):
    """No live session: the page sends the browser to sign in."""


class CsrfRefused(Exception):
    """An unsafe request without this site's origin or without the session's CSRF token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def origin_problem(request: Request) -> str | None:
    """Why this unsafe request does not come from this site, or None when it does."""
    mine = own_origin(request)
    origin = request.headers.get("origin")
    if origin is not None:
        return None if origin == mine else f"request from another origin ({origin[:100]})"
    referer = request.headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return None if f"{parts.scheme}://{parts.netloc}" == mine else (
            "request from another site (Referer)")
    return "request without an Origin header"


def _matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def _signed_in(request: Request, db: SessionDep,
               csrf_token: Annotated[str | None, Form()] = None) -> Caller:
    found = find_session(db, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignInRequired()
    row, key = found
    if request.method not in SAFE_METHODS:
        given = csrf_token or request.headers.get(CSRF_HEADER)
        if not _matches(row.csrf_token, given):
            raise CsrfRefused("missing or wrong CSRF token (reload the page and try again)")
    caller = Caller.of(key, row.csrf_token)
    request.state.caller = caller
    return caller


def maybe_signed_in(request: Request, db: SessionDep) -> Caller | None:
    """The signed-in caller if there is one (pages that anyone may see, such as the 404)."""
    found = find_session(db, request.cookies.get(SESSION_COOKIE))
    if found is None:
        return None
    caller = Caller.of(found[1], found[0].csrf_token)
    request.state.caller = caller
    return caller


def signed_in(*roles: Role) -> Callable[..., Caller]:
    """A dependency: the signed-in caller, who must hold one of `roles` (admin always passes;
    none given: any signed-in user)."""

    def dependency(caller: Annotated[Caller, Depends(_signed_in)]) -> Caller:
        if roles:
            caller.require(*roles)
        return caller

    return dependency


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def login_csrf_ok(request: Request, given: str | None) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return cookie is not None and _matches(cookie, given)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=is_tls(request), path="/", max_age=8 * 3600)


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=is_tls(request))


def render(request: Request, template: str, context: dict[str, Any],
         status_code: int = 200) -> HTMLResponse:
    caller = getattr(request.state, "caller", None)
    context = {"me": caller, "caller": caller,
               "csrf": caller.csrf if caller else None} | context
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "pages/error.html", {"title": title, "message": message},
                status_code=status)


def _sign_in_redirect(request: Request) -> Response:
    target = "/console/login"
    if request.method == "GET" and request.url.path != target:
        target += "?next=" + quote(request.url.path + (
            "?" + request.url.query if request.url.query else ""), safe="")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Page not found",
          405: "Not allowed", 409: "Conflict", 413: "Too large", 415: "Unsupported file",
          422: "Cannot do that"}


def install(app: FastAPI) -> None:
    """Console-only behaviour on the app: security headers and the Origin check on /console,
    and HTML error pages there (the JSON API keeps its JSON errors)."""
    json_http: Any = app.exception_handlers[StarletteHTTPException]
    json_registry: Any = app.exception_handlers[RegistryError]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _is_console(request):
            return await json_http(request, exc)  # type: ignore[no-any-return]
        message = ("There is no such page in the console." if exc.status_code == 404
                   else str(exc.detail))
        return _error_page(request, exc.status_code, TITLES.get(exc.status_code, "Error"),
                           message)

    async def registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        if not _is_console(request):
            return await json_registry(request, exc)  # type: ignore[no-any-return]
        status = status_for(exc)
        return _error_page(request, status, TITLES.get(status, "Error"), exc.message)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        return _sign_in_redirect(request)

    async def csrf_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CsrfRefused)
        return _error_page(request, 403, "Refused", exc.reason)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RegistryError, registry_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(CsrfRefused, csrf_refused)

    @app.middleware("http")
    async def console_guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not _is_console(request):
            return await call_next(request)
        if request.method not in SAFE_METHODS:
            problem = origin_problem(request)
            if problem is not None:
                response: Response = _error_page(request, 403, "Refused", problem)
                response.headers.update(SECURITY_HEADERS)
                return response
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
