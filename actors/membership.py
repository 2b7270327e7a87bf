"""MembershipActor: holds a member's protocol state and carries out what its step function says."""

from __future__ import annotations

import logging
import random
import reprlib
import time
from typing import Any

import msgspec
import pykka

from actors.dispatch.actor import DispatchedActor
from actors.transport.loop import IoLoop
from actors.transport.timers import Timer, on_grid
from messages.local.commands import GetClusterState, GetHealth, HealthReport
from messages.member import Member
from messages.membership.answerer import heartbeat_answerer
from messages.membership.effects import (
    Broadcast,
    CloseLink,
    Disconnect,
    Downing,
    DownMember,
    Dropped,
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    Input,
    JoinAttempt,
    JoinCluster,
    Joined,
    JoinFailed,
    JoinTried,
    Leave,
    LeaveMember,
    LeaveTimedOut,
    MembershipChanged,
    MembershipReached,
    Paused,
    PeerGone,
    ProbeTick,
    Reply,
    SeedsFound,
    SendTo,
    SetTimer,
    Suspected,
    Termination,
    TerminationKind,
    Unconfirmed,
    Watching,
)
from messages.membership.node import NodeState
from messages.membership.protocol import RemovalNotice
from messages.membership.step import step
from messages.settings import Settings

__all__ = ["MembershipActor"]

logger = logging.getLogger(__name__)


class MembershipActor(DispatchedActor):
    """Joins, gossips, detects failures, downs and leaves, as docs/architecture.md describes.

    Every protocol decision is made by the pure step function (``messages.membership.step``); this
    actor holds the ``NodeState``, turns wire messages, timers and commands into its inputs, and
    carries out the effects: messages for the transport, the listener registry and the ordering
    actor, timers on the I/O loop, and reports to its ``supervisor`` (``Joined``, ``JoinFailed``,
    ``Termination``). It is the one place that logs what the protocol does (``_log``).

    Nothing from the wire can stop it: the step function validates every message, and a step
    that raises (a bug) is logged with its input and leaves the state as it was.
    """

    def __init__(
        self,
        self_member: Member,
        listeners: pykka.ActorRef[Any],
        settings: Settings,
        scheduler: IoLoop,
        *,
        transport: pykka.ActorRef[Any],
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
        self._transport = transport
        self._timers: dict[type, Timer] = {}
        self._standing: tuple[object, ...] | None = None  # what the loop's answerer was made of

    def on_stop(self) -> None:
        self._cancel_timers()
        self._scheduler.answer_heartbeats(None)

    def on_failure(self, *exc_info: Any) -> None:
        self._cancel_timers()
        self._scheduler.answer_heartbeats(None)
        self._report(
            Termination(TerminationKind.FAILED, f"membership actor crashed: {exc_info[1]!r}")
        )

    def on_receive(self, message: Any) -> Any:
        match message:
            case (
                Inbound()
                | GossipTick()
                | HeartbeatTick()
                | ProbeTick()
                | PeerGone()
                | JoinAttempt()
                | LeaveTimedOut()
                | JoinCluster()
                | SeedsFound()
            ):
                self._step(message)
            case Leave() | LeaveMember() | DownMember():
                self._step(message)
                return self._node.published.snapshot
            case GetClusterState():
                return self._node.published.snapshot
            case GetHealth():
                return self._health()
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
            self._log(effect)
            self._carry_out(effect)
        self._update_answerer()

    def _health(self) -> HealthReport:
        node = self._node
        now = time.monotonic()
        return HealthReport(
            state=node.published.snapshot,
            joined=node.running,
            converged=node.state.is_converged(),
            phi={u: d.phi(now) for u, d in node.detectors.items() if d.is_monitoring},
            local_health=node.local_health,
        )

    def _update_answerer(self) -> None:
        """Hand the I/O loop the heartbeats it may answer itself (``heartbeat_answerer``) when
        they may have changed: a new state version, this member joined or out. Cheap otherwise,
        as most steps change neither."""
        node = self._node
        standing = (node.state.version, node.joined, node.termination is None)
        if standing != self._standing:
            self._standing = standing
            self._scheduler.answer_heartbeats(heartbeat_answerer(node))

    def _log(self, effect: Effect) -> None:
        """Log what the step reports, at the level it deserves (most effects need no line)."""
        me = self._node.me
        match effect:
            case Dropped(message=name, peer=peer, rule=None, detail=detail, sender=sender):
                logger.debug("Ignored %s from %s%s: %s", name, peer, _member(sender), detail)
            case Dropped(message=name, peer=peer, rule=rule, detail=detail, sender=sender):
                logger.warning(
                    "Dropped %s from %s%s: it breaks rule %r: %s",
                    name,
                    peer,
                    _member(sender),
                    rule,
                    detail,
                )
            case Disconnect(reason=reason):
                logger.warning("Closing a client's link: %s", reason)
            case Reply(message=RemovalNotice(to_uuid=uuid)):
                logger.info("Telling %s that it is out of the cluster", uuid)
            case JoinTried(attempt=1, seed=seed):
                logger.debug("Join attempt 1 via %s", seed)
            case JoinTried(attempt=attempt, seed=seed, waited=waited, tried=tried):
                overdue = waited >= self._node.settings.join_timeout
                logger.log(
                    logging.WARNING if overdue else logging.INFO,
                    "Join attempt %d via %s: no seed has answered in %.1f s (%s)%s",
                    attempt,
                    seed,
                    waited,
                    tried,
                    "; trying on, as join_retry_forever says" if overdue else "",
                )
            case Joined(formed=formed):
                if formed:
                    logger.info(
                        "%s forms a new cluster (it has no other seed, or none answered)",
                        me.address,
                    )
                logger.info("%s joined the cluster", me)
            case JoinFailed(reason=reason):
                logger.error("Join failed: %s", reason)
            case Suspected(member=member):
                logger.warning("%s is unreachable", member)
            case Unconfirmed(member=member, health=health):
                logger.info(
                    "%s is silent here, but no relay answered about it: not reporting it "
                    "(local health score %d)",
                    member,
                    health,
                )
            case Paused(gap=gap):
                logger.warning("This member was paused for %.1f s; it discounts that silence", gap)
            case Downing(members=members, reachable=reachable, total=total) if any(
                m.uuid == me.uuid for m in members
            ):
                logger.error(
                    "Partitioned into a minority (%d of %d up members reachable, or too few to "
                    "be sure with the membership changes in flight): downing this member and "
                    "shutting down",
                    reachable,
                    total,
                )
            case Downing(members=members):
                for member in members:
                    logger.warning("Downing unreachable %s", member)
            case Termination(kind=kind, reason=reason):
                level = _TERMINATION_LEVELS[kind]
                logger.log(
                    level, "%s is out of the cluster (%s): %s", me.address, kind.value, reason
                )
            case _:
                pass  # the effect itself is what happens: nothing to add to the log

    def _carry_out(self, effect: Effect) -> None:
        match effect:
            case SendTo() | Reply() | Broadcast() | CloseLink() | Disconnect() | Watching():
                self._tell_transport(effect)
            case MembershipChanged():
                self._listeners.tell(msgspec.structs.replace(effect, published_at=time.monotonic()))
            case MembershipReached() if self._ordering is not None:
                self._ordering.tell(effect)
            case SetTimer(delay=delay, message=message):
                pending = self._timers.pop(type(message), None)
                if pending is not None:
                    pending.cancel()
                if self._on_grid(message):
                    delay = on_grid(delay, time.time())  # the cluster's members tick together
                self._timers[type(message)] = self._scheduler.call_later(
                    delay, self.actor_ref, message
                )
            case Termination():
                self._cancel_timers()
                self._report(effect)
            case Joined() | JoinFailed():
                self._report(effect)
            case Dropped() | JoinTried() | Suspected() | Unconfirmed() | Paused() | Downing():
                pass  # news for the log only

    def _on_grid(self, message: object) -> bool:
        """Whether ``message`` is a tick that fires on the wall clock's grid of its period: the
        heartbeat's, and a settled member's gossip tick. The fast gossip ticks that spread news
        keep their own phases: with every member gossiping at one moment, news would go one hop
        a tick (docs/architecture.md, *Gossip*)."""
        match message:
            case HeartbeatTick():
                return True
            case GossipTick():
                return self._node.slow_gossip
            case _:
                return False

    def _tell_transport(
        self, message: SendTo | Reply | Broadcast | CloseLink | Disconnect | Watching
    ) -> None:
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


_TERMINATION_LEVELS = {
    TerminationKind.LEFT: logging.INFO,
    TerminationKind.STOPPED: logging.WARNING,  # here: it gave up waiting for its leave to end
    TerminationKind.REMOVED: logging.ERROR,
    TerminationKind.FAILED: logging.ERROR,
}


def _member(uuid: str | None) -> str:
    return f" (member {uuid})" if uuid else ""
