"""MembershipActor: holds a member's protocol state and carries out what its step function says."""

from __future__ import annotations

import logging
import random
import reprlib
import time
from typing import Any

import pykka

from actors.transport.loop import IoLoop
from actors.transport.timers import Timer
from messages.local.commands import AttachTransport, GetClusterState, GetMembers
from messages.member import Member, select_members
from messages.membership.effects import (
    Broadcast,
    CloseLink,
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    Input,
    JoinAttempt,
    JoinCluster,
    Joined,
    JoinFailed,
    Leave,
    MembershipChanged,
    MembershipReached,
    Reply,
    SendTo,
    SetTimer,
    Termination,
    TerminationKind,
    Watching,
)
from messages.membership.node import NodeState
from messages.membership.step import step
from messages.settings import Settings

__all__ = ["MembershipActor"]

logger = logging.getLogger(__name__)


class MembershipActor(pykka.ThreadingActor):
    """Joins, gossips, detects failures, downs and leaves, as design.md section 4 says.

    Every protocol decision is made by the pure step function (``messages.membership.step``); this
    actor holds the ``NodeState``, turns wire messages, timers and commands into its inputs, and
    carries out the effects: messages for the transport, the listener registry and the ordering
    actor, timers on the I/O loop, and reports to its ``supervisor`` (``Joined``, ``JoinFailed``,
    ``Termination``).

    Nothing from the wire can stop it: the step function validates every message, and a step
    that raises (a bug) is logged with its input and leaves the state as it was.
    """

    def __init__(
        self,
        self_member: Member,
        listeners: pykka.ActorRef[Any],
        settings: Settings,
        scheduler: IoLoop,
        supervisor: pykka.ActorRef[Any] | None = None,
        ordering: pykka.ActorRef[Any] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self._node = NodeState.create(
            self_member,
            settings,
            seed=random.getrandbits(64) if seed is None else seed,
            wall_offset=time.time() - time.monotonic(),
        )
        self._listeners = listeners
        self._scheduler = scheduler
        self._supervisor = supervisor
        self._ordering = ordering
        self._transport: pykka.ActorRef[Any] | None = None
        self._timers: dict[type, Timer] = {}

    def on_stop(self) -> None:
        self._cancel_timers()

    def on_failure(self, *exc_info: Any) -> None:
        self._cancel_timers()
        self._report(
            Termination(TerminationKind.FAILED, f"membership actor crashed: {exc_info[1]!r}")
        )

    def on_receive(self, message: Any) -> Any:
        match message:
            case Inbound() | GossipTick() | HeartbeatTick() | JoinAttempt() | JoinCluster():
                self._step(message)
            case Leave():
                self._step(message)
                return self._node.published.snapshot
            case GetMembers(selector=selector):
                return select_members(self._node.published.snapshot.up_members, selector)
            case GetClusterState():
                return self._node.published.snapshot
            case AttachTransport(transport=transport):
                self._transport = transport
            case _:
                logger.warning("MembershipActor ignores unexpected message %r", message)
        return None

    def _step(self, message: Input) -> None:
        try:
            self._node, effects = step(self._node, message, time.monotonic())
        except Exception:
            logger.exception(
                "%s kept serving after an error while handling %s",
                self._node.me.address,
                reprlib.repr(message),
            )
            return
        for effect in effects:
            self._carry_out(effect)

    def _carry_out(self, effect: Effect) -> None:
        match effect:
            case SendTo() | Reply() | Broadcast() | CloseLink() | Watching():
                self._tell_transport(effect)
            case MembershipChanged():
                self._listeners.tell(effect)
            case MembershipReached() if self._ordering is not None:
                self._ordering.tell(effect)
            case SetTimer(delay=delay, message=message):
                pending = self._timers.pop(type(message), None)
                if pending is not None:
                    pending.cancel()
                self._timers[type(message)] = self._scheduler.call_later(
                    delay, self.actor_ref, message
                )
            case Termination():
                self._cancel_timers()
                self._report(effect)
            case Joined() | JoinFailed():
                self._report(effect)

    def _tell_transport(self, message: SendTo | Reply | Broadcast | CloseLink | Watching) -> None:
        if self._transport is None:
            return
        try:
            self._transport.tell(message)
        except pykka.ActorDeadError:
            self._report(Termination(TerminationKind.FAILED, "the transport has stopped"))

    def _report(self, news: Joined | JoinFailed | Termination) -> None:
        if self._supervisor is not None:
            try:
                self._supervisor.tell(news)
            except pykka.ActorDeadError:
                logger.debug("No supervisor to tell %r (the node has stopped)", news)

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
