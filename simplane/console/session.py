"""Who is signed in to the console: a sealed session cookie, its CSRF token, and the credential
check behind the sign-in form (the kernel's authenticator, with failed attempts throttled)."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import asdict, dataclass

import orjson
from cryptography.fernet import InvalidToken
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select

from simplane.core.models import Account, ApiKey
from simplane.core.runtime import Runtime

COOKIE = "simplane_console"
SIGN_IN_COOKIE = "simplane_console_sign_in"  # the sign-in form's CSRF token, before a session
LIFETIME = 12 * 3600  # seconds a session lasts from sign-in


@dataclass(frozen=True)
class Session:
    login: str  # the SID signed in with: an Account SID, or an API key's SID
    home: str  # the account the credentials belong to
    account: str  # the account being looked at: `home` or one of its subaccounts
    csrf: str
    expires: float


def _sealed(runtime: Runtime, session: Session) -> str:
    return runtime.box.seal(orjson.dumps(asdict(session)).decode())


def read(request: Request) -> Session | None:
    """The request's session, when its cookie is ours, unexpired, and its credentials still
    stand (the account active, the API key not deleted)."""
    runtime: Runtime = request.app.state.runtime
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        session = Session(**orjson.loads(runtime.box.open(raw)))
    except (RuntimeError, InvalidToken, ValueError, TypeError):
        return None
    if session.expires < time.time():
        return None
    with runtime.db.read() as db:
        if session.login.startswith("SK"):
            standing = db.scalar(select(ApiKey.pk).where(ApiKey.sid == session.login,
                                                         ApiKey.account_sid == session.home))
        else:
            standing = 1
        status = db.scalar(select(Account.status).where(Account.sid == session.account))
    return session if standing is not None and status == "active" else None


def _secure(request: Request) -> bool:
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    return scheme == "https"


def start(request: Request, response: Response, login: str, account_sid: str) -> None:
    runtime: Runtime = request.app.state.runtime
    session = Session(login, account_sid, account_sid, secrets.token_urlsafe(24),
                      time.time() + LIFETIME)
    _set(request, response, _sealed(runtime, session))
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")


def switch(request: Request, response: Response, session: Session, account_sid: str) -> None:
    runtime: Runtime = request.app.state.runtime
    moved = Session(session.login, session.home, account_sid, session.csrf, session.expires)
    _set(request, response, _sealed(runtime, moved))


def _set(request: Request, response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=LIFETIME, path="/console", httponly=True,
                        samesite="strict", secure=_secure(request))


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console")


def sign_in_token(request: Request) -> str:
    """The CSRF token of the sign-in form: a cookie of its own, checked against the form's."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)


def keep_sign_in_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, path="/console", httponly=True,
                        samesite="strict", secure=_secure(request))


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def same_origin(request: Request) -> bool:
    """A form posted from elsewhere is refused even before its token is read: a browser names
    the page it posts from in Origin (or at least Referer)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return origin.split("://", 1)[-1].split("/", 1)[0] == host.split(",")[0].strip()


# --- signing in ------------------------------------------------------------------------------

class Throttled(Exception):
    def __init__(self, wait: int) -> None:
        super().__init__(wait)
        self.wait = wait


def verify(request: Request, username: str, password: str) -> str | None:
    """The account of an Account SID and auth token, or an API key SID and secret; None when
    they do not hold. Raises Throttled when the address or the SID has failed too often lately
    (the kernel's authenticator counts the API's failed logins and the console's alike). Runs in
    a worker thread (the check is a slow hash)."""
    runtime: Runtime = request.app.state.runtime
    authenticator = runtime.authenticator
    account_sid = authenticator.cached(username, password)
    if account_sid is not None:
        return account_sid
    address = request.client.host if request.client else ""
    wait = authenticator.backoff(address, username, password)
    if wait:
        raise Throttled(wait)
    account_sid = authenticator.verify(username, password)
    if account_sid is None:
        authenticator.failed(username, address)
    return account_sid
