"""Asks: a node's remote asks in flight and the members it sends to, shared by its router and the
threads that ask; and the direct way of a blocking ask to a named member.

The router keeps both (it alone changes the members, as the registry tells it of them, and it
ends every ask: by its answer, a failure, a member gone, a timeout, the node's stop). A thread
making a blocking ``ask`` of a named member may skip the router (``Asks.ask``): it registers the
ask here, and the lane stamps and writes it to the member's link in that thread
(``actors.messaging.lane``); the answer comes back through the ordering actor to the router as
any other, which settles the one future the asker waits on. So a blocking remote ask costs one
thread handoff at this end (the answer's), not two. It goes the router's way instead when that
is not possible or would change an order: the member is not known up here, or is this node; the
lane refuses (no link up for it); or anything of this node is still waiting to be sent
(``FlowGate.acquire_first``): a thread's tell still in the outbox must go before the ask it makes
next, as it does by the router. Thread-safe.
"""

from __future__ import annotations

import functools
import itertools
import threading
from typing import Any, NamedTuple

import msgspec
import pykka

from actors.messaging.flow import FlowGate
from actors.messaging.futures import OneShot
from actors.messaging.lane import Lane
from actors.messaging.outcomes import reply
from actors.transport.timers import Timer
from messages.address import Address
from messages.local.routing import MemberChoice, RemoteAsk
from messages.member import Member
from messages.messaging.envelope import Ask
from messages.wire.remote import MemberGone

__all__ = ["Asks", "Pending", "find_member"]


class Pending(NamedTuple):
    """An ask in flight: who waits, for which member, and its timer (None: the asker's own)."""

    ask: RemoteAsk
    member: str
    timer: Timer | None


def find_member(members: dict[str, Member], member: MemberChoice) -> Member | None:
    """The member of ``members`` that ``member`` names (a ``Member``, its uuid, its address, or
    its address as ``"host:port"``), if it is there."""
    if isinstance(member, Member):
        member = member.uuid
    if isinstance(member, str) and ":" not in member:
        return members.get(member)
    address = Address.parse(member)  # type: ignore[arg-type]
    return next((m for m in members.values() if m.address == address), None)


class Asks:
    """The asks in flight by number, and the up members by uuid (see the module docstring)."""

    def __init__(self, node_id: str, lane: Lane, gate: FlowGate) -> None:
        self._node_id = node_id
        self._lane = lane
        self._gate = gate
        self._lock = threading.Lock()
        self._pending: dict[int, Pending] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.members: dict[str, Member] = {}  # replaced whole by the router, read by any thread

    def add(self, ask: RemoteAsk, member: str, timer: Timer | None = None) -> int | None:
        """Register ``ask`` to ``member``; its number (None once the router has stopped)."""
        with self._lock:
            if self._closed:
                return None
            ask_id = next(self._ids)
            self._pending[ask_id] = Pending(ask, member, timer)
        return ask_id

    def close(self) -> list[int]:
        """The router stops: the asks in flight, for it to end; none is added after."""
        with self._lock:
            self._closed = True
            return list(self._pending)

    def set_timer(self, ask_id: int, timer: Timer) -> None:
        with self._lock:
            pending = self._pending.get(ask_id)
            if pending is not None:
                self._pending[ask_id] = pending._replace(timer=timer)
                return
        timer.cancel()  # it ended meanwhile

    def get(self, ask_id: int) -> Pending | None:
        return self._pending.get(ask_id)

    def pop(self, ask_id: int) -> Pending | None:
        """End ask ``ask_id`` here: its entry, unless something ended it before."""
        with self._lock:
            return self._pending.pop(ask_id, None)

    def numbers(self, member: str | None = None) -> list[int]:
        """The asks in flight (to ``member`` only, when given)."""
        with self._lock:
            return [n for n, p in self._pending.items() if member is None or p.member == member]

    def ask(
        self, name: str, message: Any, member: MemberChoice, kind: str, payload: bytes
    ) -> tuple[int, pykka.Future[Any]] | None:
        """Send a blocking ask of ``message`` (encoded: ``kind``, ``payload``) to the actor
        ``name`` on ``member`` straight from this thread: its number and the future its outcome
        settles; None when it must go the router's way (nothing sent, nothing held)."""
        try:
            target = find_member(self.members, member)
        except (TypeError, ValueError):  # the router's way says what is wrong with it
            return None
        if target is None or target.uuid == self._node_id:
            return None
        size = len(payload)
        if not self._gate.acquire_first(size):
            return None
        future = OneShot()  # one setter, one waiter: the cheapest wake-up
        ask_id = self.add(RemoteAsk(name, message, future, member), target.uuid)
        if ask_id is None:  # the node stops: the router's way says so
            self._gate.release(size)
            return None
        body = Ask(name, kind, msgspec.Raw(payload), ask_id)
        sent = functools.partial(self._gate.release, size)
        if not self._lane.send(target.uuid, body, sent, address=target.address):
            self.pop(ask_id)
            self._gate.release(size)
            return None
        if target.uuid not in self.members:  # gone meanwhile: the router may not have seen this
            ended = self.pop(ask_id)
            if ended is not None:
                reply(
                    ended.ask, error=MemberGone(f"member {target.address} left before it answered")
                )
        return ask_id, future
