"""Structured (JSON lines) logs. Nothing secret is ever passed to them.

A thread that logs only puts the record on a queue (no lock is taken); one listener thread
formats and writes the lines. `SIMPLANE_LOG_SAMPLE` (Settings.log_sample) is the share of
successful requests given a line; failed ones always get one.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

import orjson

_listener: QueueListener | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class Enqueue(QueueHandler):
    """Puts records on a SimpleQueue as they are: no handler lock, no formatting in the
    logging thread (the listener formats them)."""

    def handle(self, record: logging.LogRecord) -> bool:
        if self.filter(record):
            self.queue.put_nowait(record)
            return True
        return False

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Send the `simplane` loggers' records, at `level` and above, to `stream` (stderr) as JSON
    lines written by a listener thread."""
    global _listener
    stop()
    writer = logging.StreamHandler(stream or sys.stderr)
    writer.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = QueueListener(records, writer)
    _listener.start()
    root = logging.getLogger("simplane")
    root.handlers[:] = [Enqueue(records)]
    root.setLevel(level.upper())
    root.propagate = False
    atexit.unregister(stop)
    atexit.register(stop)  # the lines still queued are written on exit


def stop() -> None:
    """Write the lines still queued and stop the listener."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
