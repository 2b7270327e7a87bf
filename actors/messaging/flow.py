"""FlowGate: the bound on application messages a node has sent but not yet written to a socket.

A slow or stopped receiver must not make the sender's memory grow: each tell or ask from this node
takes a place here before it leaves the caller, sized by its payload (``acquire``: wait up to a
timeout for room, or raise ``Backpressure`` at once, as the node is configured), and gives it back
when the I/O thread has written its frame to the kernel, or dropped it with a closed link
(``release``). Two bounds: messages (each costs an envelope and a frame) and payload bytes.
Thread-safe: the callers' threads take places, the I/O thread gives them back.
"""

from __future__ import annotations

import threading

from messages.settings import Settings
from messages.wire.remote import Backpressure, MessageTooLarge

__all__ = [
    "FlowGate",
]


class FlowGate:
    """At most ``max_messages`` messages and ``max_bytes`` payload bytes in flight; ``block``
    decides whether a full gate waits (up to ``timeout``) or refuses at once. No payload may be
    larger than ``max_message_bytes`` (default ``max_bytes``)."""

    def __init__(
        self,
        max_messages: int,
        max_bytes: int,
        block: bool,
        timeout: float,
        max_message_bytes: int | None = None,
    ) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(f"the gate's bounds must be positive: {max_messages}, {max_bytes}")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_message_bytes = min(max_bytes, max_message_bytes or max_bytes)
        self._block = block
        self._timeout = timeout
        self._messages = 0
        self._bytes = 0
        self._lock = threading.Lock()  # taken directly: cheaper than entering the condition
        self._room = threading.Condition(self._lock)
        self._waiting = 0  # callers waiting for room: only then does a release notify

    @classmethod
    def of(cls, settings: Settings) -> FlowGate:
        """The gate of a node: a payload must also leave room in a frame for its envelope."""
        return cls(
            settings.max_messages_in_flight,
            settings.max_bytes_in_flight,
            settings.block_on_backpressure,
            settings.ask_timeout,
            max_message_bytes=settings.max_frame_bytes // 2,
        )

    @property
    def in_flight(self) -> tuple[int, int]:
        """Messages and payload bytes waiting to be written."""
        return self._messages, self._bytes

    def acquire(self, size: int, block: bool | None = None, count: int = 1) -> None:
        """Take a place for a payload of ``size`` bytes (``count`` places, all or none, for a
        publish to ``count`` members), or raise ``Backpressure`` (at once, or after waiting
        ``timeout``); ``MessageTooLarge`` for a payload that could never fit."""
        if size > self.max_message_bytes:
            raise MessageTooLarge(
                f"a message of {size} bytes is larger than the {self.max_message_bytes} bytes "
                "this node can send (max_bytes_in_flight, half of max_frame_bytes)"
            )
        wait = self._block if block is None else block
        with self._lock:
            if not self._fits(size, count) and not (wait and self._wait_for_room(size, count)):
                waited = f" (waited {self._timeout:g} s)" if wait else ""
                raise Backpressure(
                    f"{self._messages} messages ({self._bytes} bytes) are still waiting to be "
                    f"sent{waited}: the receivers do not keep up"
                )
            self._messages += count
            self._bytes += size * count

    def acquire_first(self, size: int) -> bool:
        """Take a place for a payload of ``size`` bytes only if no other is taken (nothing of
        this node waits to be sent: what it sends now cannot overtake anything); False, and no
        place taken, otherwise."""
        with self._lock:
            if self._messages or size > self.max_message_bytes or not self._fits(size):
                return False
            self._messages += 1
            self._bytes += size
            return True

    def release(self, size: int, count: int = 1) -> None:
        """Give back ``count`` places holding ``size`` payload bytes in all (a batch written
        at once gives its places back in one call)."""
        with self._lock:
            self._messages -= count
            self._bytes -= size
            if self._waiting:
                self._room.notify_all()

    def _wait_for_room(self, size: int, count: int) -> bool:
        """Wait (holding the lock) up to ``timeout`` for room; False if none came."""
        self._waiting += 1
        try:
            return self._room.wait_for(lambda: self._fits(size, count), self._timeout)
        finally:
            self._waiting -= 1

    def wait_for_release(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a place to be given back; False if none was."""
        with self._lock:
            self._waiting += 1
            try:
                return self._room.wait(timeout)
            finally:
                self._waiting -= 1

    def _fits(self, size: int, count: int = 1) -> bool:
        return (
            self._messages + count <= self.max_messages
            and self._bytes + size * count <= self.max_bytes
        )
