"""The CLI's log handler: a line is written only when stderr can take it at once.

A member logs on its I/O thread, the thread that answers heartbeats. A write to a reader that
has fallen behind (a full pipe, a stalled collector) would stop that thread, and the member's
peers would soon count it unreachable. A writer thread of its own was measured to slow a
200-member cluster's formation from 33 s to 73 s (a thread woken for every line takes the GIL from
the I/O thread), so ``LogSink`` has none. It asks the descriptor (``poll``, without waiting)
whether it can take more and writes in the thread that logs when it can. When it cannot, the
line waits in a bounded backlog that the next line logged, and ``flush`` (which the CLI's main
thread calls while it waits), write out as the reader catches up. A line that finds the backlog
full is dropped and counted, and the count is written before the next line that gets through.
"""

from __future__ import annotations

import logging
import os
import select
import time

__all__ = ["CAPACITY", "LogSink"]

CAPACITY = 1 << 20
"""Bytes of lines waiting for the reader at most, beyond which lines are dropped."""

_CHUNK = select.PIPE_BUF
"""Bytes per write: a pipe that polls writable has room for this many (one page)."""


class LogSink(logging.Handler):
    """A handler that never blocks the thread that logs (see the module's docstring)."""

    def __init__(self, fd: int, encoding: str = "utf-8", capacity: int = CAPACITY) -> None:
        super().__init__()
        self._fd = fd
        self._writable = select.poll()  # no FD_SETSIZE limit, unlike select.select
        self._writable.register(fd, select.POLLOUT)
        self._encoding = encoding
        self._capacity = capacity
        self._backlog = bytearray()
        self._dropped = 0
        self._closed_by_reader = False

    @property
    def backlog(self) -> int:
        """Bytes waiting for the reader."""
        return len(self._backlog)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``'s line behind the backlog (or count it dropped, when the backlog is
        still full), and write what the reader can take now. ``Handler.handle`` calls this
        holding the handler's lock."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if self._closed_by_reader:
            return
        data = f"{line}\n".encode(self._encoding, "backslashreplace")
        self._write(timeout=0.0)  # first what waits, to make room
        if len(self._backlog) + len(data) > self._capacity:
            self._dropped += 1
        else:
            if self._dropped:
                note = f"({self._dropped} log lines dropped: the log's reader fell behind)\n"
                self._backlog += note.encode(self._encoding)
                self._dropped = 0
            self._backlog += data
        self._write(timeout=0.0)

    def flush(self) -> None:
        """Write what the reader can take now, without waiting."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._write(timeout=0.0)

    def close(self, timeout: float = 2.0) -> None:
        """Write the backlog, waiting for the reader ``timeout`` seconds at most (a reader that
        never reads again must not keep the process from ending), and drop what is left."""
        with self.lock:  # type: ignore[union-attr]
            self._write(timeout)
            self._backlog.clear()  # logging.shutdown closes every handler again at exit
        super().close()

    def _write(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout if timeout else 0.0
        while self._backlog and not self._closed_by_reader:
            wait_ms = max(0, round((deadline - time.monotonic()) * 1000)) if timeout else 0
            try:
                if not self._writable.poll(wait_ms):
                    return
                written = os.write(self._fd, self._backlog[:_CHUNK])
            except BlockingIOError:
                return  # someone made the descriptor non-blocking: try again later
            except (OSError, ValueError):  # the reader closed the pipe, or the descriptor is gone
                self._closed_by_reader = True
                self._backlog.clear()
                return
            del self._backlog[:written]
