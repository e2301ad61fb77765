"""The KORE flavour's authentication: `Authorization: Bearer <token>` from the token endpoint,
for the products of the token's client; HTTP Basic (Twilio's) is refused here, as bearer tokens
are on Twilio's hosts. Failed attempts count with the Basic ones (`Authenticator.failed`) and
are refused alike past the limit (`backoff`)."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from simplane.core.api import Authenticate
from simplane.core.errors import TwilioError, too_many_requests
from simplane.kore import tokens
from simplane.kore.tokens import Grant

# The grant of the request being served: the client API asks which client calls it.
current_grant: ContextVar[Grant | None] = ContextVar("kore_grant", default=None)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kore"'}


def invalid_token(message: str) -> TwilioError:
    return TwilioError(401, 20003, message,
                       {"WWW-Authenticate": 'Bearer realm="kore", error="invalid_token"'})


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TwilioError(401, 20003, "Authenticate: this API takes an OAuth 2.0 bearer token "
                          "(Authorization: Bearer …) from /api-services/v1/auth/token", CHALLENGE)
    return token.strip()


def bearer(product: str | None) -> Authenticate:
    """The authenticate step of a KORE API: a bearer token whose client may use `product`
    (any product when None)."""

    async def authenticate(request: Request) -> str:
        runtime = request.app.state.runtime
        token = bearer_token(request)
        verifier = tokens.verifier(runtime)
        grant = verifier.cached(token)
        if grant is None:
            authenticator = runtime.authenticator
            address = request.client.host if request.client else ""
            wait = 0 if verifier.known(token) else authenticator.backoff(address)
            if wait:
                await asyncio.sleep(authenticator.DELAY)
                raise too_many_requests(wait)
            grant = await run_in_threadpool(verifier.verify, token)
            if grant is None:
                authenticator.failed(None, address)
                await asyncio.sleep(authenticator.DELAY)
                raise invalid_token("Authenticate: the bearer token is not valid (unknown, or "
                                    "its client was revoked)")
        if grant.expires <= runtime.clock.now():
            raise invalid_token("Authenticate: the bearer token has expired; get a new one")
        if product is not None and product not in grant.products:
            raise TwilioError(403, 20403, f"Forbidden: this token's client may not use {product} "
                              f"(its products: {', '.join(sorted(grant.products))})")
        current_grant.set(grant)
        return grant.account_sid

    return authenticate
