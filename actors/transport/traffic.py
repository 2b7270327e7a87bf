"""Traffic: how many messages and bytes of each type a node's links carried, both ways."""

from __future__ import annotations

import threading
from typing import NamedTuple

__all__ = ["Traffic", "TrafficCount"]


class TrafficCount(NamedTuple):
    """The messages and bytes (frames, headers included) of one message type."""

    messages: int
    bytes: int


class Traffic:
    """Counters by message type, in and out, kept cheap for the hot path.

    Received frames are counted by the I/O thread as it decodes them; sent ones where they are
    encoded (the transport actor, or the I/O thread for the heartbeats it answers), once per
    encoding: a broadcast to several clients counts once, and the handshake frames a transport
    encodes itself beforehand are not counted. A lock makes a count and the
    snapshot of another thread consistent; it is held for a dict update, never for I/O. The
    types are those of the wire codec, so the labels they become are few and bounded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: dict[str, list[int]] = {}
        self._sent: dict[str, list[int]] = {}

    def received(self, message: object, size: int) -> None:
        self._add(self._received, type(message).__name__, size)

    def sent(self, message: object, size: int) -> None:
        self._add(self._sent, type(message).__name__, size)

    def _add(self, counts: dict[str, list[int]], name: str, size: int) -> None:
        with self._lock:
            count = counts.get(name)
            if count is None:
                counts[name] = [1, size]
            else:
                count[0] += 1
                count[1] += size

    def snapshot(self) -> tuple[dict[str, TrafficCount], dict[str, TrafficCount]]:
        """(received, sent) by type name, as they are now (from any thread)."""
        with self._lock:
            return (
                {name: TrafficCount(*count) for name, count in self._received.items()},
                {name: TrafficCount(*count) for name, count in self._sent.items()},
            )
