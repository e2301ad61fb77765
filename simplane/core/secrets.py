"""Secrets at rest: hashed for checking, sealed (encrypted) only where the server must sign with them.

Auth tokens and API key secrets are random 128-bit values, not passwords people choose: they are
stored as an HMAC-SHA256 keyed with a key derived from the server key (which never enters the
database), so checking one costs microseconds, the same for a credential that exists and one that
does not. Hashes made by earlier versions (PBKDF2) are still accepted, and replaced on the next
successful login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from simplane.config import ConfigError

HMAC_PREFIX = "hmac-sha256$"


def new_token() -> str:
    return secrets.token_hex(16)


def verify_pbkdf2(secret: str, stored: str) -> bool:
    """A hash stored by earlier versions: pbkdf2_sha256$iterations$salt$digest."""
    try:
        _, iterations, salt, expected = stored.split("$")
        digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


class SecretBox:
    """Encrypts auth tokens, and hashes credentials, with a server key that never enters the
    database."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)
        self._hash_key = HKDF(algorithm=SHA256(), length=32, salt=None,
                              info=b"simplane credential hash").derive(base64.urlsafe_b64decode(key))
        self._dummy = self.digest("", "")  # checked against when a credential does not exist

    @classmethod
    def from_settings(cls, secret_key: str | None, key_path: Path) -> SecretBox:
        if secret_key:
            return cls._of(secret_key, "SIMPLANE_SECRET_KEY")
        if key_path.exists():
            return cls._of(key_path.read_bytes().strip(), str(key_path))
        key = Fernet.generate_key()
        key_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return cls(key_path.read_bytes().strip())
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return cls(key)

    @classmethod
    def _of(cls, key: str | bytes, where: str) -> SecretBox:
        try:
            return cls(key)
        except ValueError:  # never say more of the key than where it came from
            raise ConfigError(
                f"{where} is not a Fernet key (32 url-safe base64-encoded bytes): give the key "
                "the data was encrypted with, or make a new one with `python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
                "(auth tokens sealed with another key cannot be read then)") from None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:  # the key changed: say so rather than sign with garbage
            raise RuntimeError("auth token cannot be decrypted: SIMPLANE_SECRET_KEY changed?") from exc

    def digest(self, sid: str, secret: str) -> str:
        """What is stored for the secret of `sid` (an account or API key): bound to that SID."""
        mac = hmac.new(self._hash_key, f"{sid}\0{secret}".encode(), hashlib.sha256)
        return HMAC_PREFIX + mac.hexdigest()

    def check(self, sid: str, secret: str, stored: str | None) -> bool:
        """Whether `secret` is the one stored for `sid`; with nothing stored (no such SID) the
        same work is done against a dummy, so the answer takes as long either way."""
        if stored is not None and not stored.startswith(HMAC_PREFIX):
            return verify_pbkdf2(secret, stored)
        expected = self._dummy if stored is None else stored
        return hmac.compare_digest(self.digest(sid, secret), expected) and stored is not None

    @staticmethod
    def outdated(stored: str) -> bool:
        """Whether a stored hash is of an earlier kind, to be replaced on a successful login."""
        return not stored.startswith(HMAC_PREFIX)
