"""KORE's Webhook API (`kore-webhook-v1.json`), on the `webhook` API of `simplane.kore.apis`:
the account's webhook signing secrets.

`POST /v1/secrets` (JSON `{Name}`; the secret is answered this once), `GET /v1/secrets`
(`status`, `page_number`, `page_size`; `{data, meta_data}`), `PATCH /v1/secrets/{id}`
(`{Name, Status}`). Errors are in the API's shape, `{status, code, message, info}`
(`simplane.kore.errors.with_info`). The rules are in `simplane.kore.webhook_secrets`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi.responses import Response

from simplane.core.api import Ctx, json_response
from simplane.core.clock import iso
from simplane.core.params import json_value
from simplane.kore import webhook_secrets as rules
from simplane.kore.apis import webhook
from simplane.kore.webhook_models import WebhookSecret
from simplane.kore.webhook_secrets import invalid

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


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


def _at_least_one(ctx: Ctx, name: str, default: int, most: int | None = None) -> int:
    value: int = ctx.params.get(name, default)
    if value < 1:
        raise invalid(f"Invalid {name}: must be at least 1")
    if most is not None and value > most:
        raise invalid(f"Invalid {name}: must be at most {most}")
    return value


@webhook.operation("createSecret")
def create_secret(ctx: Ctx) -> Response:
    name = rules.name_of(_body(ctx), required=True)
    assert name is not None
    row, value = rules.create_secret(ctx.db, ctx.runtime.box, ctx.now(), ctx.account_sid, name)
    return json_response({**secret_json(row), "secret": value}, 201)


@webhook.operation("getSecrets")
def get_secrets(ctx: Ctx) -> dict[str, Any]:
    status = ctx.params.get("status")  # active or pending: the spec's enum
    size = _at_least_one(ctx, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    number = _at_least_one(ctx, "page_number", 1, 10**9)
    rows, total = rules.list_secrets(ctx.db, ctx.account_sid, status, (number - 1) * size, size)

    def page_url(page: int) -> str:
        args: dict[str, Any] = {"page_size": size, "page_number": page}
        if status is not None:
            args["status"] = status
        return ctx.url(f"/secrets?{urlencode(args)}")

    # `count` is the number of secrets on this page, as in KORE's example (count 1 with
    # page_size 1 on page 3 of at least 4).
    return {"data": [secret_json(row) for row in rows],
            "meta_data": {"count": len(rows), "page_size": size, "page_number": number,
                          "previous_page_url": page_url(number - 1) if number > 1 else "",
                          "next_page_url": page_url(number + 1) if number * size < total else ""}}


@webhook.operation("modifySecret")
def modify_secret(ctx: Ctx) -> dict[str, Any]:
    body = _body(ctx)
    name, status = rules.name_of(body, required=False), rules.status_of(body)
    if name is None and status is None:
        raise invalid("Nothing to modify: give Name, Status or both")
    row = rules.modify_secret(ctx.db, ctx.now(), ctx.account_sid, ctx.path["id"], name, status)
    return secret_json(row)
