"""Account resources named by SID, or by SID or unique name (they share the URL), and the rules
of unique names. Models have `account_sid`, `sid`, `unique_name` and `pk` columns."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from simplane.core.errors import bad_request, conflict, not_found
from simplane.core.sids import looks_like_sid

MAX_UNIQUE_NAME = 255


@cache
def by_key_statement(model: Any, by_sid: bool) -> Select:
    """Built once per shape (with bind parameters), not per request: building and caching a
    fresh statement costs more CPU than the query itself."""
    column = model.sid if by_sid else model.unique_name
    return select(model).where(model.account_sid == bindparam("account_sid"),
                               column == bindparam("key"))


def get_by_key(db: Session, model: Any, account_sid: str, key: str, prefix: str) -> Any | None:
    """A resource of the account by SID or, failing the SID shape, by unique name."""
    stmt = by_key_statement(model, looks_like_sid(key, prefix))
    return db.scalar(stmt, {"account_sid": account_sid, "key": key})


def get_by_key_or_404(db: Session, model: Any, account_sid: str, key: str, prefix: str,
                      resource: str) -> Any:
    """`get_by_key`, with a 404 naming `resource` when there is none."""
    found = get_by_key(db, model, account_sid, key, prefix)
    if found is None:
        raise not_found(resource, key)
    return found


def get_by_sid(db: Session, model: Any, account_sid: str, sid: str, prefix: str,
               resource: str) -> Any:
    """A resource of the account by SID: a 404 naming `resource` when there is none."""
    found = None
    if looks_like_sid(sid, prefix):
        found = db.scalar(select(model).where(model.account_sid == account_sid,
                                              model.sid == sid))
    if found is None:
        raise not_found(resource, sid)
    return found


# What a client puts in a URL's path as it is, yet means something else there (the official
# clients do not escape a resource's key): the path's end, the query's or fragment's start, an
# escape.
NOT_IN_PATH = "/?#%"


def unique_name_problem(name: str) -> str | None:
    """Why `name` cannot be a unique name, or None. A resource is fetched by its unique name
    where its SID goes in the URL, so the name must not look like a SID, nor hold a character
    of `NOT_IN_PATH`."""
    if looks_like_sid(name):
        return f"{name!r} looks like a SID"
    for char in NOT_IN_PATH:
        if char in name:
            return f"{name!r} contains a {char!r} (it could not be fetched by name)"
    return None


def check_unique_name(db: Session, model: Any, account_sid: str, name: str,
                      current_pk: int | None = None, code: int = 20001) -> str | None:
    """Unique names must have the shape `unique_name_problem` asks for and are unique per
    account; an empty one clears the name. Errors carry the product's `code`."""
    if name == "":
        return None
    problem = unique_name_problem(name)
    if problem:
        raise bad_request(f"Invalid UniqueName: {problem}", code)
    if len(name) > MAX_UNIQUE_NAME:
        raise bad_request(f"Invalid UniqueName: longer than {MAX_UNIQUE_NAME} characters", code)
    taken = db.scalar(select(model.pk).where(model.account_sid == account_sid,
                                             model.unique_name == name))
    if taken is not None and taken != current_pk:
        raise conflict(f"UniqueName {name!r} is already in use on this account", code)
    return name
