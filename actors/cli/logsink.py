"""The CLI's log handler: lines reach the stream from a thread of their own.

A member logs on its I/O thread, the thread that answers heartbeats. Written there, a log
line whose reader has fallen behind (a full pipe, a stalled terminal or collector) would stop
that thread, and the member's peers would soon count it unreachable. ``LogSink`` formats a
record in the thread that logs it and only queues the line; a writer thread writes the lines
in order. The queue is bounded: when it is full a line is dropped and counted, and the count is
written before the next line that gets through.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import TextIO

__all__ = ["LogSink"]

CAPACITY = 10_000
"""Lines waiting for the writer at most (a few MB at worst), beyond which lines are dropped."""


class LogSink(logging.Handler):
    """A handler that never blocks the thread that logs (see the module's docstring)."""

    def __init__(self, stream: TextIO, capacity: int = CAPACITY) -> None:
        super().__init__()
        self._stream = stream
        self._lines: queue.Queue[str | None] = queue.Queue(capacity)
        self._dropped = 0
        self._writer = threading.Thread(target=self._write_lines, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` here and queue its line, or count it dropped (``Handler.handle``
        calls this holding the handler's lock, so the count needs no lock of its own)."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if self._dropped:
            line = f"({self._dropped} log lines dropped: the log's reader fell behind)\n{line}"
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            self._dropped += 1
        else:
            self._dropped = 0

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, waiting for the writer ``timeout`` seconds at most: a reader
        that never reads again must not keep the process from ending (the writer is a daemon)."""
        if self._writer.is_alive():  # logging.shutdown closes every handler again at exit
            with contextlib.suppress(queue.Full):
                self._lines.put(None, timeout=timeout)
            self._writer.join(timeout)
        super().close()

    def _write_lines(self) -> None:
        while (line := self._lines.get()) is not None:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                return  # the stream is gone (closed pipe, closed file): nothing more can go out
