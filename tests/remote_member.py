"""A member process with application actors, for the cross-process messaging tests.

Run as ``python tests/remote_member.py PORT [--without-types] [timing=value ...]``: a member on
127.0.0.1:PORT forming its own cluster ``CLUSTER``, with ``Echo`` registered as "echo", ``Slow``
as "slow" and ``Counter`` as "count"; prints ``ready`` once they are, and leaves when stdin
closes. The tests import the message types from here and register them with ``register_types``;
``--without-types`` leaves them unregistered in the member (an unknown message type there).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec
import pykka

from actors.node import start_member
from messages.settings import Settings
from messages.wire.remote import register

CLUSTER = "remote-member-test"
SLOW_SECONDS = 0.02


class Ping(msgspec.Struct, frozen=True):
    number: int


class Pong(msgspec.Struct, frozen=True):
    number: int


class Blob(msgspec.Struct, frozen=True):
    data: bytes


def register_types() -> None:
    """The same names in this process and the tests' (``__main__`` here, a module there)."""
    for message_type in (Ping, Pong, Blob):
        register(message_type, f"remote_member.{message_type.__name__}")


class Echo(pykka.ThreadingActor):
    """``Ping(n)`` → ``Pong(n)``; raises ``ValueError`` on ``Ping(-1)``.

    A plain value comes back.
    """

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            if message.number < 0:
                raise ValueError(f"negative: {message.number}")
            return Pong(message.number)
        return message


class Slow(pykka.ThreadingActor):
    """Answers like ``Echo`` after ``SLOW_SECONDS`` of work: a backlog builds up behind it."""

    def on_receive(self, message: Any) -> Any:
        time.sleep(SLOW_SECONDS)  # the work this actor stands for
        return Pong(message.number) if isinstance(message, Ping) else message


class Counter(pykka.ThreadingActor):
    """Counts ``Blob`` messages; answers ``"count"`` with the number so far."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Blob):
            self.count += 1
            return None
        return self.count if message == "count" else None


def main(argv: list[str]) -> None:
    port = int(argv[0])
    if "--without-types" not in argv:
        register_types()
    timings = {
        key: float(value) for key, value in (arg.split("=") for arg in argv[1:] if "=" in arg)
    }
    with start_member(CLUSTER, port=port, settings=Settings.fast_test(), **timings) as node:
        for name, actor in (("echo", Echo), ("slow", Slow), ("count", Counter)):
            node.register(name, actor.start())
        print("ready", flush=True)
        sys.stdin.read()
        node.leave(timeout=10)
    pykka.ActorRegistry.stop_all()


if __name__ == "__main__":
    main(sys.argv[1:])
