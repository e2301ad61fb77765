"""Twilio SIDs: a two-letter prefix and 32 lowercase hex digits from a CSPRNG."""

import os
import re

SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def new_sid(prefix: str) -> str:
    return prefix + os.urandom(16).hex()  # as secrets.token_hex(16), without its layers


def looks_like_sid(value: str, prefix: str | None = None) -> bool:
    if not SID_RE.match(value):
        return False
    return prefix is None or value.startswith(prefix)
