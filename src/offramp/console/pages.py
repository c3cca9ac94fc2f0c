"""The console's page, its assets, and signing in and out.

``/console`` is one HTML page (the pages are sections switched by the URL's fragment)
for a signed-in browser, and the sign-in form for anyone else. Files are read from the
package when asked for, so an unused console holds nothing in memory. Every response
forbids framing and every script or style not served from here.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from offramp.api.responses import JSONResponse
from offramp.console.access import (
    COOKIE,
    Session,
    access_of,
    checked_change,
    current_session,
    over_tls,
    same_origin,
    signed_in,
)
from offramp.errors import PermissionDenied

ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_SIGN_IN_FAILED = '<p class="error" role="alert">That key does not sign in here.</p>'

router = APIRouter(prefix="/console")


def _file(name: str) -> bytes:
    return resources.files("offramp.console").joinpath("static", name).read_bytes()


def _html(name: str, status_code: int = 200, message: str = "") -> Response:
    body = _file(name).replace(b"<!--message-->", message.encode())
    return Response(body, status_code, headers=_HEADERS, media_type="text/html; charset=utf-8")


@router.get("")
@router.get("/")
async def console_page(request: Request) -> Response:
    if current_session(request) is None:
        return _html("sign-in.html")
    return _html("console.html")


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, "Not Found")
    return Response(_file(name), media_type=ASSETS[name], headers=_HEADERS)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """A form post of ``key``: a session cookie and back to the console, or the form
    again with 401. A post from another site's page (its ``Origin``) is refused, so no
    page elsewhere can sign a browser in under a key of its choosing."""
    if not same_origin(request):
        raise PermissionDenied("sign in from the console's own page", code="cross_origin")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("key") or [""])[0].strip()
    access = access_of(request)
    role = access.role_for(given) if given else None
    if role is None:
        return _html("sign-in.html", 401, _SIGN_IN_FAILED)
    session = access.issue(role)
    response = RedirectResponse("/console", status_code=303, headers=_HEADERS)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=int(request.app.state.settings.console_session_s),
        path="/console",
        secure=over_tls(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/sign-out")
async def sign_out(_: Session = Depends(checked_change)) -> Response:
    response = JSONResponse({"signed_out": True}, headers=_HEADERS)
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
    return response


@router.get("/api/session")
async def session(the: Session = Depends(signed_in)) -> JSONResponse:
    """The signed-in role and the CSRF token the page sends with every change."""
    return JSONResponse(
        {"role": the.role, "csrf": the.csrf, "expires": the.expires}, headers=_HEADERS
    )
