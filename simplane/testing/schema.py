"""A migrated SQLite database made once and copied after: migrating a new file takes seconds,
copying one milliseconds. The copy is kept in pytest's cache, named after the migrations that
made it, so a change to any of them makes a new one."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

from simplane.core.db import MIGRATIONS, upgrade


def schema_key() -> str:
    """A digest of every migration (and the environment that runs them)."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def migrated(database: Path, cache: Path) -> None:
    """Make `database` (a new SQLite file) migrated: a copy of the cached one, or migrated here
    and then cached."""
    template = cache / f"schema-{schema_key()}.db"
    if template.exists():
        shutil.copyfile(template, database)
        return
    upgrade(f"sqlite:///{database}")
    partial = cache / f"{template.name}.{os.getpid()}.tmp"
    source, target = sqlite3.connect(database), sqlite3.connect(partial)
    try:
        source.backup(target)  # a consistent copy, whatever the write-ahead log holds
    finally:
        source.close()
        target.close()
    os.replace(partial, template)  # whole, or not at all (another session may race this one)
