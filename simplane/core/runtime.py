"""One running simplane: settings, database, clock, secrets, auth cache and background worker.

The kernel knows no product: the worker runs the jobs it is given here or registered on it
later (`simplane.app.create_app` registers every product's, see `simplane.products`)."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from simplane.config import ConfigError, Settings
from simplane.core import outbound, wakeup
from simplane.core.accounts import Authenticator, Credentials, ensure_bootstrap_account
from simplane.core.callbacks import SecretLookup, Waiting
from simplane.core.clock import Clock
from simplane.core.db import Database, upgrade
from simplane.core.secrets import SecretBox
from simplane.core.virtual_clock import DatabaseClock
from simplane.core.worker import Job, Worker


class Runtime:
    def __init__(self, settings: Settings | None = None, clock: Clock | None = None,
                 migrate: bool = True, jobs: Iterable[Job] = ()) -> None:
        self.settings = settings or Settings()
        try:
            self.outbound = outbound.Policy.parse(self.settings.outbound_allow or "none")
        except ValueError as exc:
            raise ConfigError(f"SIMPLANE_OUTBOUND_ALLOW: {exc}") from None
        if migrate:
            upgrade(self.settings.database_url)
        self.db = Database(self.settings.database_url)
        # The database's clock (real time until it is made virtual), unless one is given.
        self.clock: Clock = clock or DatabaseClock(self.db)
        self.box = SecretBox.from_settings(self.settings.secret_key, self.settings.secret_key_path())
        self.authenticator = Authenticator(self.db, self.box)
        # Requests to tenants' URLs go only where the outbound policy allows; `http_async` is
        # for those an API request waits for, so that the wait holds no thread.
        timeout = self.settings.callback_timeout
        self.http = outbound.client(lambda: self.outbound, timeout)
        self.http_async = outbound.async_client(lambda: self.outbound, timeout)
        self.waiting = Waiting(self.settings.callback_concurrency)
        # The operator's own endpoints (e.g. SIMPLANE_SEGMENT_URL) are not tenants' URLs.
        self.http_trusted = httpx.Client(timeout=timeout, follow_redirects=False)
        self.worker = Worker(self, list(jobs), cap=15.0 if self.db.is_sqlite else 60.0)
        self.listener: wakeup.Listener | None = None
        # Per callback flavour other than Twilio's, where its webhook secrets are found
        # (`simplane.core.callbacks`; the products register theirs).
        self.webhook_secrets: dict[str, SecretLookup] = {}
        self.bootstrap: Credentials | None = None

    def ensure_bootstrap(self) -> Credentials | None:
        with self.db.write() as db:
            self.bootstrap = ensure_bootstrap_account(
                db, self.box, self.clock, self.settings.account_sid, self.settings.auth_token)
        return self.bootstrap

    def start(self) -> None:
        if self.settings.run_workers:
            if not self.db.is_sqlite:  # other processes' work wakes the worker
                self.listener = wakeup.Listener(self.db, self.worker.wake).start()
            self.worker.start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.worker.stop()
        self.http.close()
        self.http_trusted.close()
        self.db.dispose()
