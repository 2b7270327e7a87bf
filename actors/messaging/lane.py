"""Lane: how this node stamps application envelopes, and writes one straight to its link.

Every envelope this node sends is stamped here: the next sequence number for its receiver, the
digest of the membership version this node has reached (its clock too, when ``Definitions`` says
the receiver needs it). The ordering actor stamps through it and hands the envelope to the
transport or the loop (``stamp``); an asking thread, or an answering actor's thread, may instead
have its envelope stamped and written to the link in one step (``send``), with no hop through the
I/O thread: a blocking remote ask then costs one thread handoff at each end instead of two.

Why the receiver still sees each sender's envelopes in sequence order: ``send`` stamps and writes
holding this lane's lock and then the link's (``actors.transport.link.write_now``), so envelopes
written this way reach a link in the order of their numbers; and it writes nothing while an
envelope stamped for the other way has not yet been written or dropped (``passing``: each such
stamp holds ``_transit`` up until its frame's ``on_sent``), so it never overtakes one. What
``send`` refuses (a link not up for it, TLS, an envelope in transit, no route known) goes the
ordering actor's way, unchanged. The membership version is set by the ordering actor as it adopts
one (``reached``), so a direct envelope names at least the version the ordering actor would have
named for it. Thread-safe.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping
from typing import Any

from actors.transport.link import OnSent, notify_sent
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.messaging.envelope import Envelope
from messages.messaging.versions import EMPTY_DIGEST, Definitions
from messages.settings import Settings
from messages.vector_clock import VectorClock

__all__ = ["Lane"]


class Lane:
    """The stamps of one node's envelopes, and its direct way to the links (module docstring).

    ``routes`` is the transport's offer of links to members by address (it alone changes it;
    ``TransportActor``'s ``shared_routes``); ``send`` only reads it."""

    def __init__(self, loop: IoLoop, settings: Settings, routes: Mapping[Address, int]) -> None:
        self._loop = loop
        self._routes = routes
        self._lock = threading.Lock()
        self._sequences: dict[str, int] = {}
        self._version = VectorClock()
        self._digest = EMPTY_DIGEST
        # Sent again after half the wait: a definition lost with a link is back before the
        # receiver gives up on the gap the loss left.
        self._definitions = Definitions(settings.causal_wait / 2)
        self._transit = 0  # envelopes stamped for the ordering actor's way, not yet written

    # -- the ordering actor's side ------------------------------------------------------------

    def reached(self, version: VectorClock, digest: int) -> None:
        """This node has adopted membership ``version`` (whose digest is ``digest``)."""
        with self._lock:
            self._version, self._digest = version, digest

    def forget(self, receiver: str) -> None:
        """``receiver`` (a client) is gone: a later one of that name is a new stream."""
        with self._lock:
            self._sequences.pop(receiver, None)
            self._definitions.forget(receiver)

    def stamp(self, to: str, bodies: list[Any], on_sent: OnSent) -> tuple[list[Envelope], OnSent]:
        """Envelopes for ``bodies`` to ``to``, in order, for the ordering actor's way (the first
        defines the version when needed, the rest name it alone), and the ``on_sent`` their
        frames must end with: it lets ``send`` write again once they are out."""
        with self._lock:
            envelopes = [self._stamp(to, bodies[0])]
            sequence, digest = envelopes[0].sequence, self._digest
            for body in bodies[1:]:
                sequence += 1
                envelopes.append(Envelope(sequence=sequence, version=digest, body=body))
            self._sequences[to] = sequence
            self._transit += 1
        return envelopes, _Passed(self, on_sent)

    def _passed(self) -> None:
        with self._lock:
            self._transit -= 1

    # -- any thread ------------------------------------------------------------------------------

    def send(
        self,
        to: str,
        body: Any,
        on_sent: OnSent,
        *,
        address: Address | None = None,
        link: int | None = None,
    ) -> bool:
        """Stamp ``body`` for ``to`` and write it on ``link``, or on the link the transport
        offers to ``address``, now (in this thread); ``on_sent`` once it is written or dropped.
        False (nothing stamped, nothing called) when it cannot go this way: the caller then
        hands it to the ordering actor."""
        with self._lock:
            if self._transit:
                return False
            if link is None:
                link = None if address is None else self._routes.get(address)
                if link is None:
                    return False
            written = self._loop.write_now(link, functools.partial(self._frame, to, body), on_sent)
        if written is None:  # the rest waits on the link: the loop sends it
            self._loop.flush(link)
        return written is not False

    def _frame(self, to: str, body: Any) -> bytes:
        envelope = self._stamp(to, body)
        frame = self._loop.encode(envelope)
        if frame is None:  # a payload is encoded bytes already: a bug
            raise TypeError(f"an envelope to {to} cannot be encoded")
        return frame

    def _stamp(self, to: str, body: Any) -> Envelope:
        """The next envelope to ``to`` (holding the lock)."""
        sequence = self._sequences.get(to, 0) + 1
        self._sequences[to] = sequence
        defined = self._definitions.needed(to, self._digest, time.monotonic())
        clock = self._version if defined else None
        return Envelope(sequence=sequence, version=self._digest, body=body, version_clock=clock)


class _Passed:
    """The ``on_sent`` of envelopes stamped for the ordering actor's way: the lane's count of
    them first, then the frame's own."""

    __slots__ = ("_lane", "_on_sent")

    def __init__(self, lane: Lane, on_sent: OnSent) -> None:
        self._lane = lane
        self._on_sent = on_sent

    def __call__(self) -> None:
        self._lane._passed()
        notify_sent(self._on_sent)
