"""KORE's Webhook API (`kore-webhook-v1.json`): the account's webhook signing secrets.

`POST /v1/secrets` (JSON `{Name}`; the secret is answered this once), `GET /v1/secrets`
(`status`, `page_number`, `page_size`; `{data, meta_data}`), `PATCH /v1/secrets/{id}`
(`{Name, Status}`). Every error is in the API's shape, `{status, code, message, info}`. The rules
are in `simplane.kore.webhooks`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi.responses import Response

from simplane.core.api import Ctx, ProductAPI, json_response
from simplane.core.clock import iso
from simplane.core.errors import TwilioError
from simplane.core.params import json_value
from simplane.kore import webhooks
from simplane.kore.webhook_models import WebhookSecret
from simplane.kore.webhooks import KoreError, invalid

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def as_kore(error: TwilioError) -> KoreError:
    """A kernel error (a bad query string, a NUL in the path) in the Webhook API's shape."""
    if isinstance(error, KoreError):
        return error
    code = {400: webhooks.INVALID, 401: webhooks.UNAUTHORIZED, 403: webhooks.FORBIDDEN,
            404: webhooks.NOT_FOUND, 405: webhooks.METHOD_NOT_ALLOWED,
            409: webhooks.CONFLICT}.get(error.status, error.code)
    return KoreError(error.status, code, error.message, error.headers)


def secret_json(row: WebhookSecret) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "status": row.status,
            "last_modified": iso(row.last_modified)}


def _body(ctx: Ctx) -> dict[str, Any]:
    """The request's JSON object."""
    try:
        body = json_value(ctx.body or b"")
    except ValueError:
        raise invalid("Invalid request body: not JSON") from None
    if not isinstance(body, dict):
        raise invalid("Invalid request body: must be a JSON object")
    return body


def _query(ctx: Ctx) -> dict[str, str]:
    return dict(ctx.query_pairs)  # a repeated parameter: its last value


def _positive(query: dict[str, str], name: str, default: int, most: int | None = None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise invalid(f"Invalid {name}: {raw!r} is not a whole number of at least 1")
    value = int(text)
    if most is not None and value > most:
        raise invalid(f"Invalid {name}: at most {most}")
    return value


def create_secret(ctx: Ctx) -> Response:
    name = webhooks.name_of(_body(ctx), required=True)
    assert name is not None
    row, value = webhooks.create_secret(ctx.db, ctx.runtime.box, ctx.now(), ctx.account_sid, name)
    return json_response({**secret_json(row), "secret": value}, 201)


def get_secrets(ctx: Ctx) -> dict[str, Any]:
    query = _query(ctx)
    status = query.get("status")
    if status is not None and status not in webhooks.STATUSES:
        raise invalid(f"Invalid status: {status!r} is not one of {', '.join(webhooks.STATUSES)}")
    size = _positive(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    number = _positive(query, "page_number", 1)
    rows, total = webhooks.list_secrets(ctx.db, ctx.account_sid, status, (number - 1) * size,
                                        size)

    def page_url(page: int) -> str:
        args = {"page_size": size, "page_number": page}
        if status is not None:
            args["status"] = status  # type: ignore[assignment]
        return ctx.url(f"/secrets?{urlencode(args)}")

    return {"data": [secret_json(row) for row in rows],
            "meta_data": {"count": len(rows), "page_size": size, "page_number": number,
                          "previous_page_url": page_url(number - 1) if number > 1 else "",
                          "next_page_url": page_url(number + 1) if number * size < total else ""}}


def modify_secret(ctx: Ctx) -> dict[str, Any]:
    body = _body(ctx)
    name, status = webhooks.name_of(body, required=False), webhooks.status_of(body)
    if name is None and status is None:
        raise invalid("Nothing to modify: give Name, Status or both")
    row = webhooks.modify_secret(ctx.db, ctx.now(), ctx.account_sid, ctx.path["id"], name,
                                 status)
    return secret_json(row)


class WebhookAPI(ProductAPI):
    """The kernel's request handling, with every error it raises in the Webhook API's shape."""

    def _arguments(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._arguments(*args, **kwargs)
        except TwilioError as error:
            raise as_kore(error) from None


api = WebhookAPI("kore/webhook")
api.operator("POST", "/v1/secrets", status=201, form=False)(create_secret)
api.operator("GET", "/v1/secrets")(get_secrets)
api.operator("PATCH", "/v1/secrets/{id}", form=False)(modify_secret)
