"""Settings, from arguments or the environment (SIMPLANE_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///simplane.db"


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
    max_body: int = field(default_factory=lambda: int(
        os.environ.get("SIMPLANE_MAX_BODY", str(1024 * 1024))))
    # A bearer token that may read /metrics (besides admin accounts).
    metrics_token: str | None = field(
        default_factory=lambda: os.environ.get("SIMPLANE_METRICS_TOKEN") or None)
    callback_timeout: float = 5.0  # also Event Streams' webhook timeout, as Twilio's
    # Event Streams: how long a failing sink is retried before it is marked failed (its backlog
    # is kept), events per delivery, and endpoint overrides for Kinesis (and STS) and Segment.
    events_retry_horizon: float = field(default_factory=lambda: float(
        os.environ.get("SIMPLANE_EVENTS_RETRY_HORIZON", 4 * 3600)))
    events_batch_size: int = field(default_factory=lambda: int(
        os.environ.get("SIMPLANE_EVENTS_BATCH_SIZE", 100)))
    kinesis_endpoint_url: str | None = field(
        default_factory=lambda: os.environ.get("SIMPLANE_KINESIS_ENDPOINT_URL"))
    segment_url: str = field(default_factory=lambda: os.environ.get(
        "SIMPLANE_SEGMENT_URL", "https://api.segment.io"))

    def __post_init__(self) -> None:
        self.database_url = normalise_database_url(self.database_url)

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
