"""The CLI's log handler never blocks the thread that logs (``actors/cli/logsink.py``), down to
a member process whose stderr nobody reads."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from support.processes import cli_command

from actors.cli.demo import free_port
from actors.cli.logsink import LogSink
from actors.client import start_client

PAGE = 4096  # F_SETPIPE_SZ rounds up to a number of pages


@pytest.fixture
def pipe(request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    """A small pipe: (read end, write end), closed at the end. Two pages, or as many as the
    test's indirect parameter (a pipe of one page polls unwritable once it holds a byte)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PAGE * getattr(request, "param", 2))
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):  # closed by the test
            os.close(fd)


def fill(write_end: int) -> None:
    """Fill the pipe to the brim, as a reader that has fallen behind leaves it."""
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * PAGE)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(write_end, True)


def drain(read_end: int) -> bytes:
    """What the pipe holds now."""
    os.set_blocking(read_end, False)
    chunks = []
    try:
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(read_end, True)
    return b"".join(chunks)


def sink_logger(sink: LogSink, name: str) -> logging.Logger:
    sink.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test_logsink.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [sink]
    return logger


def test_lines_wait_for_a_full_pipe_in_order_and_the_log_call_returns(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe
    sink = LogSink(write_end)
    logger = sink_logger(sink, "full")
    fill(write_end)
    for n in range(5):
        logger.info("line %d", n)  # would block a StreamHandler here for good
    assert sink.backlog == len(b"line 0\n") * 5
    assert set(drain(read_end)) == {ord("x")}
    sink.flush()
    assert drain(read_end) == b"".join(b"line %d\n" % n for n in range(5))
    assert sink.backlog == 0


def test_the_next_line_written_carries_the_backlog_out_first(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    logger = sink_logger(LogSink(write_end), "next")
    fill(write_end)
    logger.info("first")
    drain(read_end)
    logger.info("second")
    assert drain(read_end) == b"first\nsecond\n"


def test_a_full_backlog_drops_lines_and_says_how_many_before_the_next(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe
    sink = LogSink(write_end, capacity=len(b"line-0\n") * 3)
    logger = sink_logger(sink, "drops")
    fill(write_end)
    for n in range(10):
        logger.info("line-%d", n)  # 0, 1 and 2 wait; 3 to 9 find the backlog full
    assert sink.backlog == len(b"line-0\n") * 3
    drain(read_end)
    logger.info("last")
    assert drain(read_end) == (
        b"line-0\nline-1\nline-2\n(7 log lines dropped: the log's reader fell behind)\nlast\n"
    )


def test_a_reader_that_closed_its_end_costs_the_logging_thread_nothing(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe
    sink = LogSink(write_end)
    logger = sink_logger(sink, "closed")
    os.close(read_end)
    for n in range(3):
        logger.info("line %d", n)  # EPIPE: no exception reaches the caller
    assert sink.backlog == 0
    sink.close(timeout=0.1)


def test_close_gives_up_on_a_reader_that_never_reads_again(pipe: tuple[int, int]) -> None:
    _, write_end = pipe
    sink = LogSink(write_end)
    logger = sink_logger(sink, "never")
    fill(write_end)
    logger.info("waits for good")
    started = time.monotonic()
    sink.close(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 2.0


@pytest.mark.parametrize("pipe", [1], indirect=True)
def test_a_member_whose_log_nobody_reads_keeps_serving(pipe: tuple[int, int]) -> None:
    """Each client a member serves logs its link's end (with ``-v``): 60 clients log about
    6 kB into a pipe of 4 kB that nobody reads. Written by a plain ``StreamHandler`` on the I/O
    thread, the member stopped serving at the pipe's brim; now every client is served, and once
    the log is read it holds every line, in order, down to the member's last."""
    read_end, write_end = pipe
    address = f"127.0.0.1:{free_port()}"
    member = subprocess.Popen(
        cli_command("-v", "member", "--cluster", "logsink", "--bind", address),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    try:
        for _ in range(60):
            with start_client("logsink", [address], join_timeout=10.0) as client:
                assert client.cluster_state().members
        member.terminate()
        log = b""
        while chunk := os.read(read_end, 65536):  # to its end: the member has exited
            log += chunk
        assert member.wait(10.0) == 0
    finally:
        member.kill()
        member.wait(10.0)
    lines = log.decode().splitlines()
    closed = [line for line in lines if "closed by peer" in line]
    assert len(closed) == 60, lines[-5:]
    assert "exit code 0" in lines[-1]
    assert "log lines dropped" not in log.decode()
