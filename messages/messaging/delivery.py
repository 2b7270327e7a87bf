"""Pure hold-back of application envelopes: per-sender FIFO, and the membership each depends on.

Each envelope from a sender carries the sender's sequence number for this receiver (1, 2, ...)
and the digest of the membership version the sender had seen when it sent it, with that version's
clock when the sender defines it (``messages.messaging.versions``). ``DeliveryQueue`` delivers the
envelopes of each sender in sequence order, and each only once this node's membership has reached
that version: every entry of it is at most this node's, or belongs to a member this node has
removed. So a message that names a member arrives where that member is already known. A digest
resolves against the versions this node has adopted and those senders have defined; one it cannot
resolve yet waits like a version not reached.

Waiting is bounded by ``causal_wait``: a gap that is not filled in time (the message was lost with
a link that broke) is skipped, and a version not reached (or never resolved) in time is given up,
both released as *late* with the reason, so the caller can log it. Order is never traded for
silence, and nothing is dropped but duplicates. Time is passed in; nothing here blocks or starts a
thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Set
from typing import Generic, NamedTuple, TypeVar

from messages.messaging.versions import MAX_KNOWN_VERSIONS, VersionTable, version_digest
from messages.settings import Settings
from messages.vector_clock import VectorClock

__all__ = ["DeliveryQueue", "Release"]

_LAN = Settings.lan()

T = TypeVar("T")


class Release(NamedTuple, Generic[T]):
    """An item to deliver now; ``late`` says what it did not wait for (None when on time)."""

    item: T
    late: str | None


@dataclasses.dataclass
class _Held(Generic[T]):
    version: int
    clock: VectorClock | None  # the version's clock, if this envelope defined it
    item: T
    since: float


@dataclasses.dataclass
class _Sender(Generic[T]):
    expected: int = 1
    held: dict[int, _Held[T]] = dataclasses.field(default_factory=dict)


class DeliveryQueue(Generic[T]):
    """The envelopes held back at one node, and the membership it has reached."""

    def __init__(self, causal_wait: float, max_held: int = _LAN.max_held_messages) -> None:
        if causal_wait <= 0 or max_held < 1:
            raise ValueError("causal_wait must be positive and max_held at least 1")
        self._causal_wait = causal_wait
        self._max_held = max_held
        self._senders: dict[str, _Sender[T]] = {}
        self._held_count = 0
        self._version = VectorClock()
        self._removed: Set[str] = frozenset()
        self._known = VersionTable()
        self.digest = version_digest(self._version)  # of this node's membership version
        self._reached: dict[int, None] = {}  # digests known reached, oldest first (bounded)
        self.duplicates = 0

    @property
    def held(self) -> int:
        return self._held_count

    def reached(self, version: VectorClock, removed: Set[str], now: float) -> list[Release[T]]:
        """This node's membership is now ``version`` (with ``removed`` members gone): release
        what waited for it."""
        self._version = version
        self._removed = removed
        self.digest = self._known.adopt(version)
        self._note_reached(self.digest)
        released: list[Release[T]] = []
        for sender in list(self._senders):
            self._release(sender, now, released)
        return released

    def offer(
        self,
        sender: str,
        sequence: int,
        version: int,
        item: T,
        now: float,
        clock: VectorClock | None = None,
        *,
        start_anywhere: bool = False,
        renumbers: bool = False,
    ) -> list[Release[T]]:
        """Take one envelope's ``item``, which names the membership ``version`` by its digest
        (and defines it when ``clock`` is given); return every item that became deliverable, in
        order. Raises ``ValueError`` (holding nothing) for a ``clock`` whose digest is not
        ``version``.

        With ``start_anywhere``, a sender this queue does not know starts its stream at
        ``sequence`` (at a member: a client it had forgotten, which numbers on). With
        ``renumbers``, a sender numbering from 1 again has forgotten this node (at a client: a
        member forgets a client whose links have all closed): a new stream begins, after what
        the old one left here; otherwise that 1 is a duplicate."""
        state = self._senders.get(sender)
        if (
            clock is None
            and state is not None
            and sequence == state.expected
            and not state.held
            and version in self._reached
        ):  # the common case: next in line, nothing held, its version reached
            state.expected += 1
            return [Release(item, None)]
        learned = clock is not None and self._known.learn(version, clock)
        released: list[Release[T]] = []
        if renumbers and state is not None and sequence == 1 and state.expected > 1:
            released += self.forget(sender)
            state = None
        if state is None:
            state = self._senders[sender] = _Sender(sequence if start_anywhere else 1)
        if sequence < state.expected or sequence in state.held:
            self.duplicates += 1
            return released
        if self._held_count >= self._max_held:
            self._give_up_oldest(now, released)
        state.held[sequence] = _Held(version, clock, item, now)
        self._held_count += 1
        # A version newly defined may be the one other senders' envelopes wait for.
        for waiting in list(self._senders) if learned else [sender]:
            self._release(waiting, now, released)
        return released

    def expire(self, now: float) -> list[Release[T]]:
        """Release, as late, whatever has waited ``causal_wait`` for a lost message or for a
        membership version this node has not reached."""
        released: list[Release[T]] = []
        for sender in list(self._senders):
            self._release(sender, now, released, overdue=now - self._causal_wait)
        return released

    def next_deadline(self) -> float | None:
        """When ``expire`` next has something to release (None while nothing is held)."""
        oldest = min(
            (held.since for state in self._senders.values() for held in state.held.values()),
            default=None,
        )
        return None if oldest is None else oldest + self._causal_wait

    def forget(self, sender: str) -> list[Release[T]]:
        """The sender is gone (for good, or its stream ends): release what it left here, in
        order, as late."""
        state = self._senders.pop(sender, None)
        if state is None:
            return []
        self._held_count -= len(state.held)
        return [
            Release(state.held[sequence].item, "its sender is gone")
            for sequence in sorted(state.held)
        ]

    def _release(
        self, sender: str, now: float, released: list[Release[T]], overdue: float | None = None
    ) -> None:
        """Deliver the sender's held items from its expected sequence on, as far as allowed;
        with ``overdue``, an item that has waited since before then goes anyway, as late."""
        state = self._senders[sender]
        held = state.held
        while held:
            head = held.get(state.expected)
            if head is None:  # a gap: wait for it, unless the oldest after it is overdue
                first = min(held)
                if overdue is None or held[first].since > overdue:
                    return
                lost = first - state.expected
                state.expected = first
                head = held[first]
                late: str | None = f"{lost} earlier message(s) from {sender} never came"
            else:
                late = None
            reached = self._has_reached(head)
            if not reached:
                if overdue is None or head.since > overdue:
                    return
                late = late or (
                    "this member had not yet seen the membership its sender had"
                    if reached is False
                    else "the membership version its sender had is unknown here"
                )
            del held[state.expected]
            self._held_count -= 1
            state.expected += 1
            released.append(Release(head.item, late))

    def _has_reached(self, head: _Held[T]) -> bool | None:
        """Whether this node's membership has reached ``head``'s version (None: unknown here)."""
        digest = head.version
        if digest in self._reached:
            return True
        required = self._known.get(digest) if head.clock is None else head.clock
        if required is None:
            return None
        mine, removed = self._version.timestamps, self._removed
        if all(
            mine.get(member, 0) >= n or member in removed
            for member, n in required.timestamps.items()
        ):
            self._note_reached(digest)
            return True
        return False

    def _note_reached(self, digest: int) -> None:
        """Remember that ``digest`` is reached: versions only grow, so it stays reached."""
        self._reached.pop(digest, None)
        if len(self._reached) >= MAX_KNOWN_VERSIONS:
            del self._reached[next(iter(self._reached))]
        self._reached[digest] = None

    def _give_up_oldest(self, now: float, released: list[Release[T]]) -> None:
        """The hold-back is full: release the sender whose oldest item waited longest, late."""
        sender = min(
            (s for s, state in self._senders.items() if state.held),
            key=lambda s: min(h.since for h in self._senders[s].held.values()),
        )
        before = len(released)
        self._release(sender, now, released, overdue=now)
        for index in range(before, len(released)):
            item, late = released[index]
            released[index] = Release(item, late or "the hold-back buffer was full")
