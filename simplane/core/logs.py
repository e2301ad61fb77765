"""Structured (JSON lines) logs. Nothing secret is ever passed to them.

A thread that logs only puts the record on a queue (no lock is taken); one listener thread
formats and writes the lines, those queued meanwhile at once, at most every 50 ms.
`SIMPLANE_LOG_SAMPLE` (Settings.log_sample) is the share of successful requests given a line;
failed ones always get one.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import time
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

import orjson

_listener: QueueListener | None = None


class JsonFormatter(logging.Formatter):
    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second[0]:  # a busy server's lines share their second
            self._second = (second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S"))
        entry = {"time": self._second[1], "level": record.levelname,
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


class BatchListener(QueueListener):
    """Writes the lines queued since its last write at once (one write, one flush), then
    pauses PAUSE seconds so that the next ones gather: a busy server's request lines cost the
    listener thread one wake-up (and one turn with the interpreter) per batch, not per line."""

    PAUSE = 0.05

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord],
                 writer: logging.StreamHandler[TextIO]) -> None:
        super().__init__(records, writer)
        self.records = records
        self.writer = writer

    def enqueue_sentinel(self) -> None:
        self.queue.put_nowait(None)  # after the records queued before it

    def _monitor(self) -> None:
        records = self.records
        while True:
            batch = [records.get()]
            while True:
                try:
                    batch.append(records.get_nowait())
                except queue.Empty:
                    break
            done = any(record is None for record in batch)
            self._write([r for r in batch if r is not None])
            if done:
                return
            time.sleep(self.PAUSE)

    def _write(self, batch: list[logging.LogRecord]) -> None:
        writer = self.writer
        lines = []
        for record in batch:
            if record.levelno >= writer.level:
                try:
                    lines.append(writer.format(record) + writer.terminator)
                except Exception:  # noqa: BLE001 - as logging does: report it, go on
                    writer.handleError(record)
        if lines:
            try:
                writer.stream.write("".join(lines))
                writer.flush()
            except Exception:  # noqa: BLE001
                writer.handleError(batch[-1])


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Send the `simplane` loggers' records, at `level` and above, to `stream` (stderr) as JSON
    lines written by a listener thread."""
    global _listener
    stop()
    writer = logging.StreamHandler(stream or sys.stderr)
    writer.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = BatchListener(records, writer)
    _listener.start()
    # What a record would carry and no line shows: the thread's and process's names, and where
    # it was logged from (a walk up the stack for each record; see logging's "Optimization").
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
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
