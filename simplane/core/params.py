"""Request parameters, parsed the way the official client sends them and typed by the spec.

Lists are repeated keys; booleans are true/false; dates are ISO 8601; lists of objects are JSON
strings under a repeated key. Unknown parameters are ignored, as Twilio does. A bad value is a 400
that names the parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from simplane.core.errors import bad_request
from simplane.core.outbound import Policy
from simplane.core.spec import Param

INT64 = 2**63
_DATE_ONLY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_INTEGER = re.compile(r"^\s*[+-]?[0-9]+\s*$")


def check_text(name: str, value: str, code: int = 20001) -> str:
    """A text value, unless it holds a NUL character: a client's mistake, which PostgreSQL can
    neither store nor compare."""
    if "\x00" in value:
        raise bad_request(f"Invalid {name}: contains a NUL character", code)
    return value


def form_pairs(raw: bytes, where: str) -> list[tuple[str, str]]:
    """The name/value pairs of a query string or form body, which must be UTF-8 text once
    percent-decoded: anything else is a 400 naming the parameter, not text with U+FFFD in it."""
    pairs = []
    # One character per byte first, so that percent-escapes and raw bytes are decoded alike below.
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True,
                                 encoding="latin-1"):
        try:
            name = name.encode("latin-1").decode()
        except UnicodeDecodeError:
            raise bad_request(f"Invalid {where}: a parameter name is not UTF-8 text") from None
        try:
            pairs.append((name, value.encode("latin-1").decode()))
        except UnicodeDecodeError:
            raise bad_request(f"Invalid {name}: not UTF-8 text (in the {where})") from None
    return pairs


def ascii_digits(value: str) -> bool:
    """Whether `value` is digits 0-9 only (str.isdigit also takes other scripts' digits)."""
    return value.isascii() and value.isdigit()


def json_value(raw: str | bytes) -> Any:
    """JSON from a client: ValueError when it is not JSON, or nested past what the parser
    follows."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def parse_datetime(name: str, raw: str) -> datetime:
    value = raw.strip()
    try:
        if _DATE_ONLY.match(value):
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid {name}: {raw!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        raise bad_request(f"Invalid {name}: {raw!r} is out of range") from None


def _scalar(param: Param, schema: dict[str, Any], raw: str, policy: Policy | None) -> Any:
    name = param.name
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "boolean":
        low = raw.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise bad_request(f"Invalid {name}: {raw!r} is not true or false")
    if kind == "integer":
        try:
            if not _INTEGER.match(raw):  # int() would also take "1_000" and other scripts' digits
                raise ValueError(raw)
            value = int(raw.strip())
        except ValueError:
            raise bad_request(f"Invalid {name}: {raw!r} is not an integer") from None
        if not -INT64 <= value < INT64:
            raise bad_request(f"Invalid {name}: out of range")
        if "minimum" in schema and value < schema["minimum"]:
            raise bad_request(f"Invalid {name}: must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise bad_request(f"Invalid {name}: must be at most {schema['maximum']}")
        return value
    if kind == "number":
        try:
            return float(raw.strip())
        except ValueError:
            raise bad_request(f"Invalid {name}: {raw!r} is not a number") from None
    if kind == "object" or (kind is None and "enum" not in schema):
        try:
            value = json_value(raw)
        except ValueError:
            if kind == "object":
                raise bad_request(f"Invalid {name}: {raw!r} is not a JSON object") from None
            return raw
        if kind == "object" and not isinstance(value, dict):
            raise bad_request(f"Invalid {name}: must be a JSON object")
        return value
    if fmt == "date-time":
        return parse_datetime(name, raw)
    if fmt == "http-method":
        method = raw.strip().upper()
        if method not in schema.get("enum", ["GET", "POST"]):
            raise bad_request(f"Invalid {name}: {raw!r} must be GET or POST")
        return method
    if "enum" in schema and raw not in schema["enum"]:
        allowed = ", ".join(schema["enum"])
        raise bad_request(f"Invalid {name}: {raw!r} is not one of {allowed}")
    if fmt == "uri" and raw and not schema.get("x-twilio", {}).get("ignoreFormat"):
        check_url(name, raw, policy)
    return check_text(name, raw)


def check_url(name: str, raw: str, policy: Policy | None = None) -> str:
    """An absolute http(s) URL that the HTTP client sending callbacks takes as it is: no
    whitespace or control characters (which urlsplit would quietly strip). With the outbound
    `policy`, one whose host is an IP address the policy refuses is a 400 too (a host name is
    checked when it is requested)."""
    try:
        parts = urlsplit(raw)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises on a bad port
        ok = ok and raw.isprintable() and not any(c.isspace() for c in raw)
        httpx.URL(raw)
    except (ValueError, httpx.InvalidURL):
        ok = False
    if not ok:
        raise bad_request(f"Invalid {name}: {raw!r} is not an absolute http(s) URL")
    if policy is not None and not policy.check_literal(raw):
        raise bad_request(f"Invalid {name}: {raw!r} is an address outside the outbound policy "
                          "(SIMPLANE_OUTBOUND_ALLOW)")
    return raw


class Params:
    """The parameters a request carried, typed; absent ones are absent (not None)."""

    def __init__(self, values: dict[str, Any], raw: dict[str, list[str]]) -> None:
        self._values = values
        self.raw = raw

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._values.items()


def parse(spec_params: dict[str, Param], pairs: list[tuple[str, str]], where: str,
          missing_code: int, policy: Policy | None = None) -> Params:
    """The parameters of a request; a required one missing is a 400 with `missing_code`. URLs
    are checked against the outbound `policy`."""
    raw: dict[str, list[str]] = {}
    for key, value in pairs:
        raw.setdefault(key, []).append(value)
    values: dict[str, Any] = {}
    for name, param in spec_params.items():
        if param.location == "path":
            continue
        given = raw.get(name)
        if given is None:
            if param.required:
                raise bad_request(f"Missing required parameter {name} in the {where}",
                                  missing_code)
            continue
        schema = param.schema
        if schema.get("type") == "array":
            items = schema.get("items") or {}
            values[name] = [_scalar(param, items, v, policy) for v in given]
        else:
            values[name] = _scalar(param, schema, given[-1], policy)
    return Params(values, raw)
