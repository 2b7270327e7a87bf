"""FlowGate: the bound on application messages a node has sent but not yet written to a socket.

A slow or stopped receiver must not make the sender's memory grow: each tell or ask from this node
takes a place here before it leaves the caller (``acquire``: ``Backpressure`` at once, or after
waiting up to a timeout, as the node is configured), and gives it back when the I/O thread has
written its frame to the kernel, or dropped it with a closed link (``release``). Thread-safe: the
callers' threads take places, the I/O thread gives them back.
"""

from __future__ import annotations

import threading

from messages.remote import Backpressure


class FlowGate:
    """At most ``limit`` messages in flight; ``block`` decides whether a full gate waits."""

    def __init__(self, limit: int, block: bool, timeout: float) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._block = block
        self._timeout = timeout
        self._in_flight = 0
        self._room = threading.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self, block: bool | None = None) -> None:
        """Take a place, or raise ``Backpressure`` (at once, or after waiting ``timeout``)."""
        wait = self._block if block is None else block
        with self._room:
            if self._in_flight >= self.limit and not (
                wait and self._room.wait_for(lambda: self._in_flight < self.limit, self._timeout)
            ):
                waited = f" (waited {self._timeout:g} s)" if wait else ""
                raise Backpressure(
                    f"{self._in_flight} messages are still waiting to be sent{waited}: the "
                    "receivers do not keep up"
                )
            self._in_flight += 1

    def release(self) -> None:
        with self._room:
            self._in_flight -= 1
            self._room.notify()
