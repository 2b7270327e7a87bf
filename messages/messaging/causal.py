"""Causal delivery (Birman-Schiper-Stephenson): stamping on send, hold-back and release on receive.

An item from ``s`` is deliverable when it is the next one from ``s``
(``clock[s] == delivered[s] + 1``) and everything it depends on has been delivered
(``clock[k] <= delivered[k]`` for every other ``k``). Pure: no threads, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from messages.settings import Settings
from messages.vector_clock import VectorClock

__all__ = ["CausalBuffer", "HoldBackOverflow", "Stamped", "stamp"]

_LAN = Settings.lan()


class Stamped(msgspec.Struct, frozen=True):
    """One item from ``sender``, carrying the sender's clock right after this send.

    ``clock[sender]`` is the item's sequence number from that sender (1, 2, ...); every other
    entry says how many items of that replica the sender had delivered before sending. The clock
    is never mutated once it is in a ``Stamped``.
    """

    sender: str
    clock: VectorClock
    body: Any


class HoldBackOverflow(ValueError):
    """Holding one more item back would exceed the buffer's bound; that item is not kept."""


def stamp(clock: VectorClock, sender: str, body: Any) -> tuple[VectorClock, Stamped]:
    """The sending side of the rule: the sender's clock after this send, and the item to send."""
    sent_clock = clock.increment(sender)
    return sent_clock, Stamped(sender=sender, clock=sent_clock, body=body)


class CausalBuffer:
    """The delivered clock plus the items held back until their causes are delivered.

    Held items are indexed by sender and sequence number, and only the next item of each
    sender (its "head") is ever a candidate. A head that waits for another replica is registered
    under that replica, so a delivery re-checks only the deliverer's next head and the heads that
    were waiting for the deliverer: no scan of everything held.
    """

    def __init__(self, max_held: int = _LAN.max_held_messages, *, join_late: bool = False) -> None:
        """With ``join_late``, the first item from a sender this buffer has never heard of starts
        that sender's sequence (its earlier items were sent before this node took part); this is
        sound only when each sender's items arrive in its own order."""
        if isinstance(max_held, bool) or not isinstance(max_held, int) or max_held < 1:
            raise ValueError(f"max_held must be a positive int, got {max_held!r}")
        self._max_held = max_held
        self._join_late = join_late
        self._delivered = VectorClock()
        self._held: dict[str, dict[int, Stamped]] = {}
        self._held_count = 0
        self._waiting_for: dict[str, set[str]] = {}  # replica -> senders whose head waits for it
        self._duplicates = 0

    @property
    def delivered(self) -> VectorClock:
        """Everything delivered plus own sends; replaced on change, never mutated in place."""
        return self._delivered

    @property
    def held(self) -> int:
        """How many items are held back."""
        return self._held_count

    @property
    def duplicates(self) -> int:
        """How many items were dropped as already delivered or already held."""
        return self._duplicates

    def stamp(self, sender: str, body: Any) -> Stamped:
        """Stamp an own send.

        The delivered clock counts it, so replies that depend on it deliver.
        """
        self._delivered, stamped = stamp(self._delivered, sender, body)
        return stamped

    def offer(self, stamped: Stamped) -> list[Stamped]:
        """Take one received item; return every item that became deliverable, in order.

        Raises ``HoldBackOverflow`` (and keeps nothing of ``stamped``) when it would have to be
        held back but the buffer is full.
        """
        if not isinstance(stamped, Stamped):
            raise TypeError(f"CausalBuffer.offer takes a Stamped, got {type(stamped).__name__}")
        sender = stamped.sender
        sequence = stamped.clock.get(sender)
        if sequence < 1:
            raise ValueError(
                f"item from {sender!r} has clock entry {sequence} for its own sender; "
                "a sender increments its own entry before sending"
            )
        pending = self._held.get(sender)
        if self._join_late and pending is None and sender not in self._delivered.timestamps:
            self._delivered = self._delivered.merge(VectorClock({sender: sequence - 1}))
        if sequence <= self._delivered.get(sender) or (pending is not None and sequence in pending):
            self._duplicates += 1
            return []
        is_head = sequence == self._delivered.get(sender) + 1
        blocker = self._blocker(stamped) if is_head else None
        if is_head and blocker is None:
            self._delivered = self._delivered.merge(stamped.clock)
            released = [stamped]
            self._release_after(sender, released)
            return released
        self._hold(stamped, sequence)
        if blocker is not None:
            self._waiting_for.setdefault(blocker, set()).add(sender)
        return []

    def held_items(self) -> list[Stamped]:
        """Every item held back, in no particular order."""
        return [item for pending in self._held.values() for item in pending.values()]

    def give_up(self, overdue: Callable[[Stamped], bool]) -> list[Stamped]:
        """Deliver each sender's earliest held item for which ``overdue`` holds, whatever it still
        waits for (a cause that was lost, or sent before this node took part), and what that
        unblocks; return them in delivery order."""
        released: list[Stamped] = []
        for sender in list(self._held):
            pending = self._held.get(sender)
            if not pending:
                continue
            first = min(pending)
            head = pending[first]
            if not overdue(head):
                continue
            del pending[first]
            if not pending:
                del self._held[sender]
            self._held_count -= 1
            self._delivered = self._delivered.merge(head.clock)
            released.append(head)
            self._release_after(sender, released)
        return released

    def _blocker(self, stamped: Stamped) -> str | None:
        """A replica (other than the sender) with a delivery ``stamped`` still waits for."""
        delivered = self._delivered
        for replica_id, timestamp in stamped.clock.timestamps.items():
            if replica_id != stamped.sender and timestamp > delivered.get(replica_id):
                return replica_id
        return None

    def _hold(self, stamped: Stamped, sequence: int) -> None:
        if self._held_count >= self._max_held:
            raise HoldBackOverflow(
                f"hold-back buffer full ({self._max_held} items): dropped item "
                f"#{sequence} from {stamped.sender!r}, which waits for {self._missing(stamped)}"
            )
        self._held.setdefault(stamped.sender, {})[sequence] = stamped
        self._held_count += 1

    def _missing(self, stamped: Stamped) -> str:
        """The deliveries ``stamped`` waits for, e.g. ``'a' #2..#4, 'b' #7``."""
        missing = []
        for replica_id, timestamp in stamped.clock.timestamps.items():
            needed = timestamp - 1 if replica_id == stamped.sender else timestamp
            first = self._delivered.get(replica_id) + 1
            if needed >= first:
                span = f"#{first}" if needed == first else f"#{first}..#{needed}"
                missing.append(f"{replica_id!r} {span}")
        return ", ".join(missing)

    def _release_after(self, sender: str, released: list[Stamped]) -> None:
        """Deliver, into ``released``, every held item unblocked by a delivery from ``sender``."""
        candidates = [sender, *self._waiting_for.pop(sender, ())]
        while candidates:
            candidate = candidates.pop()
            pending = self._held.get(candidate)
            if pending is None:
                continue
            sequence = self._delivered.get(candidate) + 1
            head = pending.get(sequence)
            if head is None:
                continue
            blocker = self._blocker(head)
            if blocker is not None:
                self._waiting_for.setdefault(blocker, set()).add(candidate)
                continue
            del pending[sequence]
            if not pending:
                del self._held[candidate]
            self._held_count -= 1
            self._delivered = self._delivered.merge(head.clock)
            released.append(head)
            candidates.append(candidate)
            candidates.extend(self._waiting_for.pop(candidate, ()))
