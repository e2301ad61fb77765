"""Keyset paging with Twilio's `meta` envelope.

PageToken is opaque to clients: `PA<key>` continues after a key, `PB<key>` goes back before one.
Every page is an index range scan, so the last page of a million rows costs what the first does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from sqlalchemy import Select, bindparam

from simplane.core.db import Prepared
from simplane.core.errors import TwilioError, bad_request
from simplane.core.params import INT64

if TYPE_CHECKING:
    from simplane.core.api import Ctx

PAGING_PARAMS = ("PageSize", "Page", "PageToken")
_TOKEN = re.compile(r"^P([AB])([0-9]{1,19})$")
_OFFSET = re.compile(r"^PA([0-9]{1,12})$")


def page_size(ctx: Ctx) -> int:
    size = ctx.params.get("PageSize", 50)
    if not 1 <= size <= 1000:
        raise bad_request("Invalid PageSize: must be between 1 and 1000")
    return size


def page_of_list(ctx: Ctx, items: list, render: Callable[[Any], dict]) -> dict:
    """A page of a list computed whole (a catalogue, billing periods, usage records): PageToken
    `PA<n>` continues after the n-th item."""
    size = page_size(ctx)
    page = ctx.params.get("Page", 0)
    if page < 0:
        raise bad_request("Invalid Page: must not be negative")
    start = 0
    token = ctx.params.get("PageToken")
    if token:
        match = _OFFSET.match(token)
        if not match:
            raise TwilioError(400, 21481, f"Invalid PageToken: {token!r}")
        start = int(match.group(1))
    chunk = items[start:start + size]
    more = start + size < len(items)
    return envelope(ctx, [render(item) for item in chunk], size, page,
                    next_token=f"PA{start + size}" if more else None,
                    prev_token=f"PA{max(0, start - size)}" if start and page > 0 else None)


def empty_page(ctx: Ctx) -> dict:
    """The first and only page of a list a filter leaves empty."""
    return envelope(ctx, [], page_size(ctx), ctx.params.get("Page", 0))


def paginate(
    ctx: Ctx, stmt: Select, key: Any, render: Callable[[Any], dict], *, descending: bool = False,
    rows: bool = False, params: dict[str, Any] | None = None,
) -> dict:
    """Run `stmt` (already filtered to the caller's rows) one page at a time, ordered by `key`.
    With `rows`, `stmt` selects columns, the last of them the key, read as plain rows (no ORM
    objects); else one ORM entity. With `params`, `stmt` is built once (a constant with bind
    parameters, given in `params`), and so is each page's statement made from it, and rows are
    read by `Prepared`: building and caching a statement costs more than running it."""
    size = page_size(ctx)
    page = ctx.params.get("Page", 0)
    if page < 0:
        raise bad_request("Invalid Page: must not be negative")
    token = ctx.params.get("PageToken")
    backwards = False
    where = ""
    values = dict(params or ())
    if token:
        match = _TOKEN.match(token)
        if match is None or int(match.group(2)) >= INT64:  # not a token, or past any 64-bit key
            raise TwilioError(400, 21481, f"Invalid PageToken: {token!r}")
        values["page_bound"] = int(match.group(2))
        backwards = match.group(1) == "B"
        after = backwards == descending  # towards smaller keys when going back on an ascending list
        where = ">" if after else "<"
    ascending = descending == backwards
    built: Prepared | None = None
    if params is None:
        stmt = _page_statement(stmt, key, where, ascending, size)
    else:
        shape = (stmt, where, ascending, size)
        if (built := _PAGES.get(shape)) is None:
            if len(_PAGES) > 1000:
                _PAGES.clear()
            built = _PAGES[shape] = Prepared(_page_statement(stmt, key, where, ascending, size))
        stmt = cast(Select, built.stmt)
    found: list[Any]  # rows, or ORM objects
    if rows and built is not None:
        found = list(built.rows(ctx.db, values))
    elif rows:
        found = list(ctx.db.connection().execute(stmt, values))
    else:
        found = list(ctx.db.execute(stmt, values).scalars())
    more = len(found) > size
    found = found[:size]
    if backwards:
        found.reverse()
    keys: list[int] = [row[-1] if rows else row.pk for row in found]
    has_next = more if not backwards else True
    has_prev = bool(token) and (more if backwards else True)
    return envelope(
        ctx, [render(row) for row in found], size, page,
        next_token=f"PA{keys[-1]}" if has_next and keys else None,
        prev_token=f"PB{keys[0]}" if has_prev and keys and page > 0 else None,
    )


# The page statements made from constant ones (paginate's `params`), by shape.
_PAGES: dict[tuple[Select, str, bool, int], Prepared] = {}


def _page_statement(stmt: Select, key: Any, where: str, ascending: bool, size: int) -> Select:
    """One page of `stmt`: after (>) or before (<) the bound parameter `page_bound`, if
    `where`, in `key` order, with one row more than the page to tell whether there is more."""
    if where:
        bound: Any = bindparam("page_bound")
        stmt = stmt.where(key > bound if where == ">" else key < bound)
    return stmt.order_by(key.asc() if ascending else key.desc()).limit(size + 1)


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch  # what urlencode leaves as it is


def _query(pairs: list[tuple[str, str]]) -> str:
    """urlencode(pairs), without its work for the names and values it would leave as they are
    (PageTokens, page numbers, most filters)."""
    return "&".join(f"{k}={v}" if _PLAIN(k) and _PLAIN(v) else urlencode(((k, v),))
                    for k, v in pairs)


def envelope(
    ctx: Ctx, items: list[dict], size: int, page: int, *, next_token: str | None = None,
    prev_token: str | None = None,
) -> dict:
    list_key = ctx.operation.list_key or "items"
    filters = [(k, v) for k, v in ctx.query_pairs if k not in PAGING_PARAMS]
    base = ctx.request_url

    common = _query([*filters, ("PageSize", str(size))])

    def link(page_no: int, token: str | None = None) -> str:
        if token:
            return f"{base}?{common}&Page={page_no}&{_query([('PageToken', token)])}"
        return f"{base}?{common}&Page={page_no}"

    this_token = ctx.params.get("PageToken")
    return {
        list_key: items,
        "meta": {
            "first_page_url": link(0),
            "key": list_key,
            "next_page_url": link(page + 1, next_token) if next_token else None,
            "page": page,
            "page_size": size,
            "previous_page_url": link(page - 1, prev_token) if prev_token else None,
            "url": link(page, this_token),
        },
    }
