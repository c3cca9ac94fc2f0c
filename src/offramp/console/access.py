"""Who may use the console: sign-in with a key, a signed session cookie, CSRF tokens.

The console exists only while ``admin_key`` is set (every ``/console`` path is 404
otherwise). Signing in with the admin key gives the ``admin`` role; with
``console_viewer_key`` the ``viewer`` role, which reads every page and changes nothing.

A session is a cookie ``role.expires.nonce.signature``, signed with HMAC-SHA256 under a
secret derived from both keys: nothing is stored, every replica accepts it, and changing
either key signs everybody out. The cookie is HttpOnly, SameSite=Strict, scoped to
``/console`` and Secure when the request came over TLS (directly or, per
``X-Forwarded-Proto``, through a proxy). Every change made in a session must also carry
``X-CSRF-Token``: an HMAC of the session cookie the page reads from ``/console/api/session``
(same-origin only), so a request forged from another site cannot supply it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from starlette.exceptions import HTTPException

from offramp.errors import AuthenticationFailed, PermissionDenied
from offramp.settings import Settings

COOKIE = "offramp_console"
CSRF_HEADER = "x-csrf-token"
Role = Literal["admin", "viewer"]
_ROLES: tuple[Role, ...] = ("admin", "viewer")


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its role, when the session ends, its cookie and CSRF token."""

    role: Role
    expires: float
    token: str
    csrf: str


class ConsoleAccess:
    """Issues and checks sessions under the keys of one Settings (cheap to build)."""

    def __init__(self, settings: Settings):
        admin = settings.admin_key.get_secret_value() if settings.admin_key else ""
        viewer = (
            settings.console_viewer_key.get_secret_value() if settings.console_viewer_key else ""
        )
        self._keys: dict[Role, str] = {"admin": admin, "viewer": viewer}
        self._secret = hashlib.sha256(f"offramp-console\0{admin}\0{viewer}".encode()).digest()
        self._ttl_s = settings.console_session_s

    def role_for(self, given: str) -> Role | None:
        """The role ``given`` signs in as, or None (compared in constant time)."""
        for role in _ROLES:
            key = self._keys[role]
            if key and hmac.compare_digest(given.encode(), key.encode()):
                return role
        return None

    def issue(self, role: Role, now: float | None = None) -> Session:
        expires = int((now if now is not None else time.time()) + self._ttl_s)
        body = f"{role}.{expires}.{secrets.token_urlsafe(12)}"
        token = f"{body}.{self._sign(body)}"
        return Session(role, float(expires), token, self._sign("csrf:" + token))

    def read(self, token: str | None, now: float | None = None) -> Session | None:
        """The session ``token`` carries, or None when absent, forged or expired."""
        if not token:
            return None
        body, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        role, _, rest = body.partition(".")
        expires_text = rest.partition(".")[0]
        if role not in _ROLES or not expires_text.isdigit():
            return None
        if float(expires_text) <= (now if now is not None else time.time()):
            return None
        the_role: Role = "admin" if role == "admin" else "viewer"
        return Session(the_role, float(expires_text), token, self._sign("csrf:" + token))

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()


def console_on(request: Request) -> None:
    """No console (404 on every path) without an admin key."""
    admin = request.app.state.settings.admin_key
    if admin is None or not admin.get_secret_value():
        raise HTTPException(404, "Not Found")


def access_of(request: Request) -> ConsoleAccess:
    return ConsoleAccess(request.app.state.settings)


def current_session(request: Request) -> Session | None:
    return access_of(request).read(request.cookies.get(COOKIE))


def signed_in(request: Request) -> Session:
    """A dependency of every console data route: 401 without a live session."""
    session = current_session(request)
    if session is None:
        raise AuthenticationFailed(
            "sign in to the console first (POST /console/sign-in)", code="sign_in_required"
        )
    return session


def checked_change(request: Request) -> Session:
    """A dependency of every change: a live session whose CSRF token came with the
    request (403 ``csrf_failed`` otherwise)."""
    session = signed_in(request)
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise PermissionDenied(
            f"this change needs the session's CSRF token in the {CSRF_HEADER} header",
            code="csrf_failed",
        )
    return session


def admin_change(request: Request) -> Session:
    """A dependency of changes only the admin may make (403 for the viewer)."""
    session = checked_change(request)
    if session.role != "admin":
        raise PermissionDenied("the viewer role is read-only", code="read_only")
    return session


def over_tls(request: Request) -> bool:
    """Whether the browser reached us over TLS (directly or through a proxy)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site's page
    (``Sec-Fetch-Site``, which browsers set themselves and proxies leave alone)."""
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
