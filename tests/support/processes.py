"""Child processes for tests: the ``membership`` CLI (``python -m actors ...``) or a script.

``run_cli`` runs the CLI to its end; ``Child`` (and ``start_cli``) keeps a process running while
a thread per output stream reads its lines into ``Lines``, so that a test waits (with a deadline)
for the line it expects instead of sleeping; ``stop`` (or leaving the ``with`` block) kills what
is still running. Used by the CLI, authentication, DNS and fault tests alike.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

import pytest

__all__ = ["EXIT_TIMEOUT", "LINE_TIMEOUT", "Child", "Lines", "cli_command", "run_cli", "start_cli"]

LINE_TIMEOUT = 20.0
"""Upper bound of a wait for one line (a healthy run needs a small fraction of it)."""
EXIT_TIMEOUT = 20.0
"""Upper bound of a wait for a process to exit."""


def cli_command(*args: str) -> list[str]:
    """The command line of ``membership ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "actors", *args]


def run_cli(
    *args: str, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``membership ARGS`` run to its end (``timeout`` at most), its output captured as text."""
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )


class Lines:
    """The lines of one output stream, read by a thread; waits for a pattern with a deadline."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.name = name
        self._lines: list[str] = []
        self._closed = False
        self._condition = threading.Condition()
        threading.Thread(
            target=self._read, args=(stream,), name=f"read-{name}", daemon=True
        ).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._condition:
                self._lines.append(line.rstrip("\n"))
                self._condition.notify_all()
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def snapshot(self) -> list[str]:
        with self._condition:
            return list(self._lines)

    def all(self, timeout: float = EXIT_TIMEOUT) -> str:
        """Every line, once the stream has closed (its process has ended); fails after
        ``timeout``."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._closed, timeout):
                pytest.fail(f"{self.name}: still open after {timeout:g} s")
            return "\n".join(self._lines)

    def index(self, pattern: str) -> int | None:
        """Index of the first line so far that matches ``pattern`` (``re.search``), or None."""
        regex = re.compile(pattern)
        return next((i for i, line in enumerate(self.snapshot()) if regex.search(line)), None)

    def wait_for(self, pattern: str, timeout: float = LINE_TIMEOUT) -> int:
        """Index of the first line matching ``pattern``; fails once ``timeout`` has passed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        with self._condition:
            while True:
                for i in range(checked, len(self._lines)):
                    if regex.search(self._lines[i]):
                        return i
                checked = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    tail = "\n".join(self._lines[-30:])
                    why = "stream closed" if self._closed else f"{timeout:g} s passed"
                    pytest.fail(
                        f"{self.name}: no line matches {pattern!r} ({why}); last lines:\n{tail}"
                    )
                self._condition.wait(remaining)

    def line(self, index: int) -> str:
        with self._condition:
            return self._lines[index]


class Child:
    """A running process with its stdout and stderr read into ``Lines``; ``stdin`` is
    ``subprocess.DEVNULL`` or ``subprocess.PIPE`` (the process may read it to its end)."""

    def __init__(
        self,
        command: Sequence[str],
        name: str,
        *,
        stdin: int = subprocess.DEVNULL,
        **popen: Any,
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.stdout = Lines(self.process.stdout, f"{name} stdout")
        self.stderr = Lines(self.process.stderr, f"{name} stderr")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        return self.process.wait(timeout)

    def close_stdin(self) -> None:
        """Close the process's stdin (a script that reads it to its end then stops)."""
        assert self.process.stdin is not None
        self.process.stdin.close()

    def stop(self) -> None:
        """Kill the process if it is still running, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(EXIT_TIMEOUT)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_cli(*args: str, name: str | None = None, **popen: Any) -> Child:
    """``membership ARGS`` as a running ``Child`` (named after its command by default)."""
    return Child(cli_command(*args), name or args[0], **popen)
