"""The CLI's log handler never blocks the thread that logs (``actors/cli/logsink.py``)."""

from __future__ import annotations

import io
import logging
import threading
import time

from actors.cli.logsink import LogSink

WAIT = 5.0


class StuckReader(io.StringIO):
    """A stream whose reader has fallen behind: a write blocks until ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()
        self.changed = threading.Condition()
        self.lines: list[str] = []
        self.writing = False

    def write(self, text: str) -> int:
        with self.changed:
            self.writing = True
            self.changed.notify_all()
        self.released.wait()
        with self.changed:
            self.lines.append(text)
            self.changed.notify_all()
        return len(text)

    def wait_for(self, predicate: object) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, WAIT)  # type: ignore[arg-type]


def sink_logger(sink: LogSink, name: str) -> logging.Logger:
    sink.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test_logsink.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(sink)
    return logger


def test_a_stuck_reader_never_blocks_the_logging_thread_and_drops_are_counted() -> None:
    stream = StuckReader()
    sink = LogSink(stream, capacity=3)
    logger = sink_logger(sink, "stuck")
    logger.info("1")
    stream.wait_for(lambda: stream.writing)  # the writer holds "1", stuck in its write
    for line in "23456":  # 2, 3 and 4 wait; 5 and 6 find the queue full
        logger.info(line)
    stream.released.set()
    stream.wait_for(lambda: "4\n" in stream.lines)
    logger.info("7")
    sink.close()
    assert stream.lines == [
        "1\n",
        "2\n",
        "3\n",
        "4\n",
        "(2 log lines dropped: the log's reader fell behind)\n7\n",
    ]


def test_close_gives_up_on_a_reader_that_never_reads_again() -> None:
    stream = StuckReader()
    sink = LogSink(stream, capacity=1)
    logger = sink_logger(sink, "never")
    for line in "123":
        logger.info(line)
    started = time.monotonic()
    sink.close(timeout=0.2)
    assert time.monotonic() - started < 2.0
    stream.released.set()  # lets the daemon writer end


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_stream_ends_the_writer_and_logging_goes_on_without_error() -> None:
    sink = LogSink(ClosedPipe(), capacity=2)
    logger = sink_logger(sink, "closed")
    for line in "12345":
        logger.info(line)  # no exception reaches the caller
    sink.close(timeout=0.2)
