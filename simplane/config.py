"""Settings, from arguments or the environment (SIMPLANE_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simplane.core.sids import looks_like_sid

DEFAULT_DATABASE_URL = "sqlite:///simplane.db"
MIN_AUTH_TOKEN = 16


class ConfigError(ValueError):
    """A setting simplane cannot start with: the message names it and says how to fix it."""


def env_number(name: str, default: float | None, kind: type[int | float] = float) -> Any:
    """The number an environment variable gives (`kind`), or `default` when it is unset."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {what}: set it to one (default "
                          f"{default}), or unset it") from None


def normalise_database_url(url: str) -> str:
    """postgresql:// means psycopg 3; everything else is passed to SQLAlchemy as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass
class Settings:
    database_url: str = field(
        default_factory=lambda: os.environ.get("SIMPLANE_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    secret_key: str | None = field(default_factory=lambda: os.environ.get("SIMPLANE_SECRET_KEY"))
    account_sid: str | None = field(default_factory=lambda: os.environ.get("SIMPLANE_ACCOUNT_SID"))
    auth_token: str | None = field(default_factory=lambda: os.environ.get("SIMPLANE_AUTH_TOKEN"))
    run_workers: bool = True
    # The largest request body read (bytes); larger ones are refused with 413 before they are read.
    max_body: int = field(default_factory=lambda: env_number(
        "SIMPLANE_MAX_BODY", 1024 * 1024, int))
    # A bearer token that may read /metrics (besides admin accounts).
    metrics_token: str | None = field(
        default_factory=lambda: os.environ.get("SIMPLANE_METRICS_TOKEN") or None)
    callback_timeout: float = 5.0  # also Event Streams' webhook timeout, as Twilio's
    # What tenants' URLs may reach besides public addresses (simplane.core.outbound); unset:
    # public addresses only (`serve` adds `loopback` when it listens on loopback only).
    outbound_allow: str | None = field(
        default_factory=lambda: os.environ.get("SIMPLANE_OUTBOUND_ALLOW"))
    # Callbacks an API request waits for (Proxy's intercept and out-of-session), at most this
    # many at once per account.
    callback_concurrency: int = field(default_factory=lambda: env_number(
        "SIMPLANE_CALLBACK_CONCURRENCY", 16, int))
    # Event Streams: how long a failing sink is retried before it is marked failed (its backlog
    # is kept), events per delivery, and endpoint overrides for Kinesis (and STS) and Segment.
    events_retry_horizon: float = field(default_factory=lambda: env_number(
        "SIMPLANE_EVENTS_RETRY_HORIZON", 4 * 3600))
    events_batch_size: int = field(default_factory=lambda: env_number(
        "SIMPLANE_EVENTS_BATCH_SIZE", 100, int))
    kinesis_endpoint_url: str | None = field(
        default_factory=lambda: os.environ.get("SIMPLANE_KINESIS_ENDPOINT_URL"))
    segment_url: str = field(default_factory=lambda: os.environ.get(
        "SIMPLANE_SEGMENT_URL", "https://api.segment.io"))
    # HOST:PORT of the SMSC that to-SIM SMS commands go through (network/smpp.py, `serve
    # --smpp`); None: the simulated device gateway delivers them.
    smpp: str | None = None

    # RADIUS: the shared secret, or clients (address or network → secret) with theirs, of the
    # packet gateways; the port on which they take Disconnect-Requests (RFC 5176; None: none
    # are sent), how long a pass of the sender waits for answers (s), and how long a request
    # is retried before it is given up (s).
    radius_secret: str | None = field(
        default_factory=lambda: os.environ.get("SIMPLANE_RADIUS_SECRET"))
    radius_clients: dict[str, str] = field(default_factory=dict)
    radius_dae_port: int | None = field(default_factory=lambda: env_number(
        "SIMPLANE_RADIUS_DAE_PORT", None, int))
    radius_dae_wait: float = 0.2
    radius_dae_retry_horizon: float = field(default_factory=lambda: env_number(
        "SIMPLANE_RADIUS_DAE_RETRY_HORIZON", 24 * 3600))
    # The share (0 to 1) of successful requests given a log line; failed ones always get one.
    log_sample: float = field(default_factory=lambda: env_number("SIMPLANE_LOG_SAMPLE", 1.0))

    def __post_init__(self) -> None:
        self.database_url = normalise_database_url(self.database_url)
        if not 0 <= self.log_sample <= 1:
            raise ConfigError(f"SIMPLANE_LOG_SAMPLE={self.log_sample} must be between 0 and 1")

    def check_bootstrap(self) -> None:
        """The bootstrap account's credentials, when given, can make (or rotate) an account:
        ConfigError saying what is wrong otherwise."""
        sid, token = self.account_sid, self.auth_token
        if bool(sid) != bool(token):
            given, missing = (("SIMPLANE_ACCOUNT_SID", "SIMPLANE_AUTH_TOKEN") if sid
                              else ("SIMPLANE_AUTH_TOKEN", "SIMPLANE_ACCOUNT_SID"))
            raise ConfigError(f"{given} is set but {missing} is not: set both, or neither to "
                              "have an account made (and its credentials printed) on first start")
        if sid and not looks_like_sid(sid, "AC"):
            raise ConfigError(f"SIMPLANE_ACCOUNT_SID={sid!r} is not an Account SID: it must be "
                              "AC followed by 32 hex digits")
        if token and len(token) < MIN_AUTH_TOKEN:
            raise ConfigError(f"SIMPLANE_AUTH_TOKEN is {len(token)} characters long: it must be "
                              f"at least {MIN_AUTH_TOKEN} (e.g. from `openssl rand -hex 16`)")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret_key_path(self) -> Path:
        """Where the key that encrypts auth tokens at rest lives when SIMPLANE_SECRET_KEY is unset:
        beside the SQLite file, or in the working directory."""
        if self.is_sqlite and ":memory:" not in self.database_url:
            db_file = Path(self.database_url.split(":///", 1)[1])
            return db_file.with_suffix(".key")
        return Path("simplane.key")
