"""MembershipActor: the single owner of this node's membership state and its protocol."""

from __future__ import annotations

import functools
import logging
import math
import random
import reprlib
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.futures import fail, settle
from actors.io_loop import IoLoop
from actors.publisher import StatePublisher
from actors.timers import Timer
from messages.address import Address
from messages.commands import (
    AttachTransport,
    GetClusterState,
    GetMembers,
    GossipTick,
    HeartbeatTick,
    JoinAttempt,
    JoinCluster,
    Leave,
    Termination,
    TerminationKind,
)
from messages.core.downing import Verdict, down_members, keep_majority, pending_unreachable
from messages.core.failure_detector import FailureDetectorRegistry, PhiAccrualFailureDetector
from messages.core.gossip import choose_gossip_peer, needs_fast_gossip
from messages.core.ring import heartbeat_targets
from messages.core.state import MembershipState, leader_actions, prune_tombstones
from messages.events import CurrentClusterState, MemberRemoved
from messages.links import Broadcast, CloseLink, Inbound, Reply, SendTo, Watching
from messages.member import Member, MemberStatus, select_members
from messages.routing import MembershipReached
from messages.settings import Settings
from messages.vector_clock import Causality
from messages.wire.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    HelloAccepted,
    HelloRefused,
    Join,
    JoinRefused,
    RemovalNotice,
    Watch,
    Welcome,
)
from messages.wire.validation import InvalidMessage, validate

logger = logging.getLogger(__name__)

MONITORED_STATUSES = frozenset({MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING})


class JoinRefusedError(RuntimeError):
    """The cluster refused this member (cluster name or protocol mismatch, removed incarnation)."""


class JoinTimeoutError(TimeoutError):
    """No seed answered within ``join_timeout``."""


class MembershipActor(pykka.ThreadingActor):
    """Joins, gossips, detects failures, downs and leaves, as design.md section 4 says.

    The protocol decisions are made by the pure core in ``messages``; this actor holds the state,
    runs the timers, and tells the transport what to send. ``terminated`` (a pykka Future, optional)
    is set to a ``Termination`` when this member is out of the cluster for good, so the node stops.

    Nothing from the wire can stop it: every message is validated before it is acted on (an invalid
    one is dropped with one log line naming the sender and the rule), and an error while handling
    wire input or a timer is logged with that input, after which the actor keeps serving.
    """

    def __init__(
        self,
        self_member: Member,
        listeners: pykka.ActorRef[Any],
        settings: Settings,
        scheduler: IoLoop,
        terminated: pykka.Future[Termination] | None = None,
        ordering: pykka.ActorRef[Any] | None = None,
    ) -> None:
        super().__init__()
        self._scheduler = scheduler
        self._ordering = ordering
        self._self = self_member
        self._uuid = self_member.uuid
        self._settings = settings
        self._publisher = StatePublisher(listeners)
        self._terminated = terminated
        self._transport: pykka.ActorRef[Any] | None = None
        self._rng = random.Random()
        self._detectors = FailureDetectorRegistry(self._new_detector)
        self._heartbeat_sequence = 0
        self._first_answer_due: dict[str, float] = {}
        self._redialled_at: dict[str, float] = {}
        self._tickers: list[Timer] = []
        self._timeouts: list[Timer] = []
        self._gossip_ticks = 0
        self._join: JoinCluster | None = None
        self._join_deadline = 0.0
        self._unreachable_since = time.monotonic()
        self._pending_unreachable: frozenset[str] = frozenset()
        self._leaving = False
        self._finished = False

    # -- lifecycle -------------------------------------------------------------------------

    def on_stop(self) -> None:
        for ticker in self._tickers:
            ticker.cancel()
        for timeout in self._timeouts:
            timeout.cancel()

    def on_failure(self, *exc_info: Any) -> None:
        self.on_stop()
        if self._terminated is not None:
            reason = f"membership actor crashed: {exc_info[1]!r}"
            settle(self._terminated, Termination(TerminationKind.FAILED, reason))

    def on_receive(self, message: Any) -> Any:
        match message:
            case Inbound():
                self._guarded(message, functools.partial(self._on_inbound, message))
            case GossipTick():
                self._guarded(message, self._gossip_tick)
            case HeartbeatTick():
                self._guarded(message, self._heartbeat_tick)
            case GetMembers(selector=selector):
                return select_members(self._publisher.snapshot.up_members, selector)
            case GetClusterState():
                return self._publisher.snapshot
            case Leave():
                return self._leave()
            case JoinAttempt(attempt=attempt):
                self._try_join(attempt)
            case JoinCluster():
                self._start_join(message)
            case AttachTransport(transport=transport):
                self._transport = transport
            case _:
                logger.warning("MembershipActor ignores unexpected message %r", message)
        return None

    def _guarded(self, message: Any, handler: Callable[[], None]) -> None:
        """Handle wire input or a timer; an error is a bug to log with that input, not a reason
        to stop the node (which a crash of this actor would do)."""
        try:
            handler()
        except Exception:
            logger.exception(
                "%s kept serving after an error while handling %s",
                self._self.address,
                reprlib.repr(message),
            )

    @property
    def _state(self) -> MembershipState:
        return self._publisher.state

    @property
    def _joined(self) -> bool:
        return self._state.member(self._uuid) is not None

    def _new_detector(self) -> PhiAccrualFailureDetector:
        return PhiAccrualFailureDetector(
            threshold=self._settings.phi_threshold,
            acceptable_heartbeat_pause=self._settings.acceptable_heartbeat_pause,
            min_std_deviation=self._settings.min_std_deviation,
            first_heartbeat_estimate=self._settings.heartbeat_interval,
        )

    # -- joining ---------------------------------------------------------------------------

    def _start_join(self, request: JoinCluster) -> None:
        self._join = request
        self._join_deadline = time.monotonic() + self._settings.join_timeout
        others = [seed for seed in request.seeds if seed != self._self.address]
        if not others:
            self._form_cluster()
        else:
            self._try_join(0)

    def _try_join(self, attempt: int) -> None:
        """Send Join to the next seed; retry with backoff and jitter until joined or timed out."""
        if self._join is None or self._joined:
            return
        seeds = [seed for seed in self._join.seeds if seed != self._self.address]
        first_seed_is_self = self._join.seeds[0] == self._self.address
        now = time.monotonic()
        if first_seed_is_self and attempt >= len(seeds) * 2:
            logger.info("No other seed answered; %s forms the cluster", self._self.address)
            self._form_cluster()
            return
        if now >= self._join_deadline:
            tried = ", ".join(str(seed) for seed in seeds)
            self._fail_join(
                JoinTimeoutError(
                    f"no seed answered within {self._settings.join_timeout:g} s (tried {tried})"
                )
            )
            return
        seed = seeds[attempt % len(seeds)]
        logger.debug("Join attempt %d via %s", attempt + 1, seed)
        self._send(seed, Join(member=self._self))
        backoff = min(0.25 * 2 ** (attempt // len(seeds)), 2.0) * self._rng.uniform(0.75, 1.25)
        backoff = min(backoff, self._join_deadline - now)  # fail on time, not one backoff late
        self._timeouts.append(
            self._scheduler.call_later(backoff, self.actor_ref, JoinAttempt(attempt + 1))
        )

    def _form_cluster(self) -> None:
        self._publisher.publish(MembershipState.initial(self._self))
        self._joined_now()
        self._leader_tick()

    def _joined_now(self) -> None:
        """Start the protocol timers once this member is part of a cluster."""
        for timeout in self._timeouts:
            timeout.cancel()
        self._timeouts.clear()
        settings = self._settings
        self._tickers = [
            self._scheduler.call_every(settings.gossip_interval / 3, self.actor_ref, GossipTick()),
            self._scheduler.call_every(
                settings.heartbeat_interval, self.actor_ref, HeartbeatTick()
            ),
        ]
        if self._join is not None:
            self._join.done.set(None)
        logger.info("%s joined the cluster", self._self)

    def _fail_join(self, error: Exception) -> None:
        logger.error("Join failed: %s", error)
        if self._join is not None:
            fail(self._join.done, error)
            self._join = None

    # -- inbound wire messages -------------------------------------------------------------

    def _on_inbound(self, inbound: Inbound) -> None:
        wire = inbound.message
        try:
            validate(wire, self._uuid)
        except InvalidMessage as error:
            sender = getattr(wire, "from_uuid", None)
            logger.warning(
                "Dropped %s from %s%s: it %s",
                type(wire).__name__,
                inbound.peer,
                f" (member {sender})" if sender else "",
                error,
            )
            return
        self._on_wire(wire, inbound.link)

    def _on_wire(self, wire: Any, link: int) -> None:
        match wire:
            case (
                Gossip(to_uuid=recipient)
                | GossipStatus(to_uuid=recipient)
                | Heartbeat(to_uuid=recipient)
            ) if recipient != self._uuid:
                pass  # meant for an earlier incarnation at this address
            case (
                Gossip(from_uuid=sender)
                | GossipStatus(from_uuid=sender)
                | Heartbeat(from_uuid=sender)
            ) if (reason := self._state.removal_reason(sender)) is not None:
                self._tell_removed(sender, reason, link)
            case Gossip(from_uuid=sender, state=remote):
                self._on_gossip(sender, remote)
                self._act_as_leader()
            case GossipStatus():
                self._on_gossip_status(wire)
                self._act_as_leader()
            case Heartbeat(sequence=sequence):
                self._reply(link, HeartbeatAck(from_uuid=self._uuid, sequence=sequence))
            case HeartbeatAck(from_uuid=sender) if (
                sender in self._first_answer_due or self._detectors.is_monitoring(sender)
            ):
                self._first_answer_due.pop(sender, None)
                self._detectors.heartbeat(sender, time.monotonic())
            case HeartbeatAck():
                pass  # from a member this node no longer monitors
            case Join(member=member):
                self._on_join(member, link)
            case Welcome(state=state) if not self._joined and self._join is not None:
                self._publisher.publish(self._state.receive(state, self._uuid)[0])
                self._joined_now()
            case JoinRefused(reason=reason) | HelloRefused(reason=reason):
                if self._join is not None and not self._joined:
                    self._fail_join(JoinRefusedError(reason))
            case RemovalNotice(to_uuid=recipient, reason=reason) if recipient == self._uuid:
                self._finish_removed(f"a member answered: {reason}")
            case RemovalNotice():
                pass  # meant for an earlier incarnation at this address
            case Watch():
                self._reply(link, ClientUpdate(state=self._state))
                self._tell_transport(Watching(link))
            case Welcome() | HelloAccepted():
                pass
            case _:
                logger.warning("Unexpected wire message %s", type(wire).__name__)

    def _on_join(self, member: Member, link: int) -> None:
        state = self._state
        if not self._joined:
            logger.debug("Ignoring a join from %s: not a member yet", member.address)
            return  # the joiner retries, or tries another seed
        if state.is_tombstoned(member.uuid):
            self._reply(link, JoinRefused(reason=f"incarnation {member.uuid} was removed"))
            return
        self._adopt(state.add_joining(member, by=self._uuid))
        self._reply(link, Welcome(state=self._state))

    def _tell_removed(self, sender: str, reason: str, link: int) -> None:
        """Answer a downed or removed incarnation that still talks: never merge its gossip, never
        acknowledge its heartbeats, tell it that it is out (so it stops instead of living on)."""
        logger.info("Telling %s that it is out of the cluster", sender)
        self._reply(link, RemovalNotice(to_uuid=sender, reason=reason))

    def _on_gossip(self, sender: str, remote: MembershipState) -> None:
        if not self._joined:
            return
        if remote.is_tombstoned(self._uuid):
            self._adopt(remote)
            self._finish_removed("the cluster removed this member")
            return
        if self._state.member(sender) is None and remote.member(sender) is None:
            return
        new_state, causality = self._state.receive(remote, self._uuid)
        self._adopt(new_state)
        match causality:
            case Causality.BEFORE | Causality.CONCURRENT:
                self._gossip_to(sender, full=True)
            case Causality.AFTER:
                self._gossip_to(sender, full=False)  # tell the sender we have seen it now
            case Causality.SAME:
                self._share_seen(sender, remote.seen)

    def _on_gossip_status(self, status: GossipStatus) -> None:
        if not self._joined:
            return
        match self._state.version.compare(status.version):
            case Causality.AFTER:
                self._gossip_to(status.from_uuid, full=True)
            case Causality.BEFORE | Causality.CONCURRENT:
                self._gossip_to(status.from_uuid, full=False)
            case Causality.SAME:
                self._adopt(self._state.with_seen(status.seen | {self._uuid}))
                self._share_seen(status.from_uuid, status.seen)

    def _share_seen(self, peer: str, peer_seen: frozenset[str]) -> None:
        """Same version on both sides: tell ``peer`` who else has seen it when it does not know
        yet, so seen sets (and with them convergence) reach the leader without waiting for ticks."""
        if not self._state.seen <= peer_seen:
            self._gossip_to(peer, full=False)

    # -- gossip ----------------------------------------------------------------------------

    def _gossip_tick(self) -> None:
        """Runs 3x per gossip interval: leader actions, then gossip on every third tick, or on
        every tick while fewer than half of the members have seen the current version."""
        self._leader_tick()
        self._gossip_ticks += 1
        if self._gossip_ticks % 3 and not needs_fast_gossip(self._state):
            return
        self._gossip_once()

    def _gossip_once(self) -> None:
        peer = choose_gossip_peer(self._state, self._uuid, self._rng)
        if peer is not None:
            self._gossip_to(peer.uuid, full=peer.uuid not in self._state.seen)

    def _gossip_to(self, uuid: str, full: bool) -> None:
        member = self._state.member(uuid)
        if member is None:
            return
        state = self._state
        message: Gossip | GossipStatus
        if full:
            message = Gossip(from_uuid=self._uuid, to_uuid=uuid, state=state)
        else:
            message = GossipStatus(
                from_uuid=self._uuid, to_uuid=uuid, version=state.version, seen=state.seen
            )
        self._send(member.address, message)

    # -- failure detection -----------------------------------------------------------------

    def _heartbeat_tick(self) -> None:
        state = self._state
        member = state.member(self._uuid)
        if member is None or member.status not in MONITORED_STATUSES:
            return
        monitored = [m.uuid for m in state.members if m.status in MONITORED_STATUSES]
        targets = heartbeat_targets(self._uuid, monitored, self._settings.monitored_by)
        now = time.monotonic()
        self._watch_targets(targets, now)
        silent = frozenset(u for u in targets if not self._detectors.is_available(u, now))
        self._redial(silent, now)
        self._heartbeat_sequence += 1
        for uuid in targets:
            target = state.member(uuid)
            assert target is not None
            self._send(
                target.address,
                Heartbeat(from_uuid=self._uuid, to_uuid=uuid, sequence=self._heartbeat_sequence),
            )
        row = state.reachability_row(self._uuid)
        downed = {m.uuid for m in state.members if m.status == MemberStatus.DOWN}
        unreachable = silent | (row & downed)  # a downed member stays unreachable until removed
        if unreachable != row:
            for uuid in unreachable - row:
                logger.warning("%s is unreachable", state.member(uuid))
            self._adopt(state.set_reachability(self._uuid, unreachable))

    def _redial(self, silent: frozenset[str], now: float) -> None:
        """Close the links to heartbeat targets that stopped answering, once per acceptable pause.

        The next heartbeat then dials a fresh connection. After a partition heals, a connection
        that lost packets can stay stuck in TCP retransmission backoff for many seconds (and the
        kernel's TCP_USER_TIMEOUT is not there on every platform): a new one works at once.
        """
        pause = self._settings.acceptable_heartbeat_pause
        self._redialled_at = {u: t for u, t in self._redialled_at.items() if u in silent}
        for uuid in silent:
            member = self._state.member(uuid)
            if member is not None and now - self._redialled_at.get(uuid, -math.inf) >= pause:
                self._redialled_at[uuid] = now
                self._tell_transport(CloseLink(member.address, "heartbeats unanswered"))

    def _watch_targets(self, targets: tuple[str, ...], now: float) -> None:
        """Follow the heartbeat ring: drop detectors of former targets, expect answers from new ones.

        A new target's detector starts with its first real answer; one that has not answered
        within a heartbeat interval gets a stand-in first heartbeat then (as Akka does), so a target
        that never answers is still detected, and a live one's history holds only real intervals.
        """
        for uuid in self._detectors.monitored() - set(targets):
            self._detectors.remove(uuid)
        expected_by = now + self._settings.heartbeat_interval
        self._first_answer_due = {
            uuid: self._first_answer_due.get(uuid, expected_by)
            for uuid in targets
            if not self._detectors.is_monitoring(uuid)
        }
        for uuid in [u for u, due in self._first_answer_due.items() if due <= now]:
            self._detectors.heartbeat(uuid, self._first_answer_due.pop(uuid))

    # -- leader actions and downing ----------------------------------------------------------

    def _leader_tick(self) -> None:
        """Every gossip tick: act as leader, prune tombstones, consider downing."""
        if not self._joined:
            return
        self._act_as_leader()
        self._adopt(prune_tombstones(self._state, time.time(), self._settings.tombstone_ttl))
        self._apply_downing()
        self._finish_lone_exit()

    def _act_as_leader(self) -> None:
        """Leader actions (a no-op unless this member leads a converged state); run on every tick
        and after every gossip, so a convergence is acted on the moment it happens."""
        if self._joined and not self._finished:
            self._adopt(leader_actions(self._state, self._uuid, time.time()))

    def _apply_downing(self) -> None:
        pending = pending_unreachable(self._state)
        now = time.monotonic()
        if pending != self._pending_unreachable:
            self._pending_unreachable = pending
            self._unreachable_since = now
        decision = keep_majority(
            self._state, now - self._unreachable_since, self._settings.down_after
        )
        if decision.verdict is Verdict.DOWN_UNREACHABLE:
            leader = self._state.leader()
            if leader is not None and leader.uuid == self._uuid:
                for uuid in sorted(pending):
                    logger.warning("Downing unreachable %s", self._state.member(uuid))
                self._adopt(down_members(self._state, pending, by=self._uuid))
        elif decision.verdict is Verdict.DOWN_SELF:
            logger.error(
                "Partitioned into a minority (%d of %d up members reachable, or too few to be "
                "sure with the membership changes in flight): downing this member and shutting "
                "down",
                decision.reachable_count,
                decision.total,
            )
            self._finish(
                TerminationKind.REMOVED,
                "downed itself: this member was on the minority side of a partition",
            )
            self._adopt(down_members(self._state, frozenset({self._uuid}), by=self._uuid))

    def _leave(self) -> CurrentClusterState:
        """Mark this member LEAVING; the leader moves it on to EXITING and REMOVED."""
        member = self._state.member(self._uuid)
        if member is not None and member.status < MemberStatus.LEAVING:
            self._leaving = True
            self._adopt(self._state.set_status(self._uuid, MemberStatus.LEAVING, by=self._uuid))
            self._leader_tick()
        return self._publisher.snapshot

    def _finish_lone_exit(self) -> None:
        """An EXITING member with nobody left to remove it removes itself."""
        member = self._state.member(self._uuid)
        if member is None or member.status != MemberStatus.EXITING:
            return
        if all(
            m.uuid == self._uuid or m.status >= MemberStatus.EXITING for m in self._state.members
        ):
            self._adopt(MembershipState(tombstones=((self._uuid, time.time()),)))
            self._finish(TerminationKind.LEFT, "left the cluster")

    # -- state changes and sending -----------------------------------------------------------

    def _adopt(self, new_state: MembershipState) -> None:
        """Publish ``new_state``; push it to clients; say goodbye to members it removed."""
        old_state = self._state
        events = self._publisher.publish(new_state)
        if new_state is old_state:
            return
        if self._ordering is not None:
            self._ordering.tell(MembershipReached(new_state.version, new_state.tombstoned))
        if events:
            self._tell_transport(Broadcast(ClientUpdate(state=new_state)))
            if self._tickers and not self._finished:
                self._gossip_once()  # push a change at once; the ticks only mop up
        member = new_state.member(self._uuid)
        for event in events:
            if isinstance(event, MemberRemoved) and event.member.uuid != self._uuid:
                self._detectors.remove(event.member.uuid)
                # A goodbye to a member that left, unless this member has left too: gossip from a
                # member it does not hold is refused (that one finishes its exit alone).
                if event.previous_status == MemberStatus.EXITING and member is not None:
                    self._send(
                        event.member.address,
                        Gossip(from_uuid=self._uuid, to_uuid=event.member.uuid, state=new_state),
                    )
                self._forget(event.member.address)
        if member is not None and member.status == MemberStatus.DOWN:
            self._finish_removed("the cluster downed this member")

    def _send(self, address: Address, message: Any) -> None:
        self._tell_transport(SendTo(address=address, message=message))

    def _reply(self, link: int, message: Any) -> None:
        """Answer on the link a request came in on."""
        self._tell_transport(Reply(link=link, message=message))

    def _forget(self, address: Address) -> None:
        if self._state.member_at(address) is None:
            self._tell_transport(CloseLink(address, "the member there was removed"))

    def _tell_transport(self, message: Any) -> None:
        if self._transport is None:
            return
        try:
            self._transport.tell(message)
        except pykka.ActorDeadError:
            self._finish(TerminationKind.FAILED, "the transport has stopped")

    def _finish_removed(self, reason: str) -> None:
        """The cluster has removed or downed this member: the end of a leave, or an exclusion."""
        member = self._state.member(self._uuid)
        downed = member is not None and member.status is MemberStatus.DOWN
        kind = TerminationKind.LEFT if self._leaving and not downed else TerminationKind.REMOVED
        self._finish(kind, reason)

    def _finish(self, kind: TerminationKind, reason: str) -> None:
        """This member is out of the cluster for good: stop the timers and tell the node why."""
        if self._finished:
            return
        self._finished = True
        log = logger.info if kind is TerminationKind.LEFT else logger.error
        log("%s is out of the cluster (%s): %s", self._self.address, kind.value, reason)
        for ticker in self._tickers:
            ticker.cancel()
        if self._terminated is not None:
            settle(self._terminated, Termination(kind, reason))
