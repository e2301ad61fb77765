"""Secrets at rest: hashed for checking, sealed (encrypted) only where the server must sign with them."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from simplane.config import ConfigError

ITERATIONS = 60_000


def new_token() -> str:
    return secrets.token_hex(16)


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        _, iterations, salt, expected = stored.split("$")
        digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


class SecretBox:
    """Encrypts auth tokens with a server key that never enters the database."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

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
