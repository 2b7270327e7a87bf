"""The state of one member's protocol, and ``Step``: one step of it under way.

Every protocol decision of a member is made here (docs/architecture.md): how it joins, answers a
join, gossips and to whom, detects failures and downs, leaves, and when it is out for good.
``NodeState`` is an immutable value; time (``now``, seconds of a monotonic clock) and randomness
(a seed in the state) come in, typed effects (``messages.membership.effects``) go out. The
membership actor interprets those effects over real sockets and timers; the simulator over
simulated ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from messages.address import Address
from messages.events import MemberRemoved
from messages.member import Member, MemberStatus
from messages.membership.downing import down_members
from messages.membership.effects import (
    Broadcast,
    CloseLink,
    Effect,
    GossipTick,
    HeartbeatTick,
    JoinAttempt,
    Joined,
    JoinFailed,
    JoinTried,
    LeaveTimedOut,
    MembershipReached,
    Reply,
    SendTo,
    SetTimer,
    Termination,
    TerminationKind,
)
from messages.membership.entropy import SplitMix
from messages.membership.failure_detector import PhiAccrualFailureDetector
from messages.membership.gossip import choose_gossip_peer, needs_fast_gossip
from messages.membership.leader import leader_actions, prune_tombstones
from messages.membership.protocol import ClientUpdate, Gossip, GossipStatus, Join, MembershipMessage
from messages.membership.publication import Publication
from messages.membership.state import MembershipState
from messages.settings import Settings

__all__ = ["JoinProgress", "NodeState", "Probe", "Relayed", "Step"]


_LEFT_BY_OTHERS = frozenset({MemberStatus.LEAVING, MemberStatus.EXITING})
"""Statuses another member may have moved this one to by a leave it did not ask for itself."""

# A large cluster's member whose fast gossip ticks came late by more than this fraction of their
# interval is short of CPU: no fast gossip (``speeds_up``) until the lateness, which decays by
# this factor a tick, is below it again (a fast tick 100 ms late: about 3.5 s at the defaults).
_LATE_FRACTION = 0.1
_LATENESS_DECAY = 0.9


@dataclasses.dataclass(frozen=True, slots=True)
class JoinProgress:
    """A join under way: the seeds, the attempt to make next, and when to give up.

    ``seeds`` are the ``configured`` ones followed by those a ``discovery`` (a DNS name, say)
    found last, in address order so every member that found the same set agrees on which is
    first; ``found`` once the discovery has answered at all.
    """

    seeds: tuple[Address, ...]
    deadline: float
    attempt: int = 0
    configured: tuple[Address, ...] = ()
    discovery: str | None = None
    found: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Probe:
    """A silent target this member confirms through relays, since ``since``: the round under
    way (``nonce``, ending at ``deadline``; None between rounds), the ``relays`` it asked, those
    that found the target silent too (``nacks``) and those of them whose dial to it was refused
    (``refusals``); ``alive_elsewhere`` once a relay has heard the target while this member still
    does not (a broken link, not a dead member). ``hinted``: the round was started by the
    transport's news that the target's end is gone, not by its detector; ``refused_here``: this
    member's own dial was refused."""

    since: float
    nonce: int
    deadline: float | None
    relays: frozenset[str]
    nacks: frozenset[str] = frozenset()
    refusals: frozenset[str] = frozenset()
    hinted: bool = False
    refused_here: bool = False
    alive_elsewhere: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Relayed:
    """A probe this member runs as a relay: ``requester`` wants to know by ``deadline`` whether
    ``target`` answers (round ``nonce``)."""

    requester: str
    target: str
    nonce: int
    deadline: float


@dataclasses.dataclass(frozen=True, slots=True)
class NodeState:
    """Everything one member's protocol knows, as an immutable value.

    ``published`` holds the membership state and the events listeners have seen; ``detectors``
    the failure detectors of its heartbeat targets; ``probes`` its silent targets being
    confirmed through relays, ``relayed`` the probes it runs for others, ``local_health`` its
    Lifeguard score (0 healthy); ``heartbeat_sent_at`` when it last heartbeated its targets and
    ``answers_due`` when their answers are checked (``probing.check_answers``);
    ``heard_accused`` when each pending member that its own row accused, or whose row accused
    it, last sent it anything (``detection`` does not down itself just then); ``random`` the
    state of its random source.
    """

    me: Member
    settings: Settings
    random: int
    wall_offset: float = 0.0
    published: Publication = dataclasses.field(default_factory=Publication)
    detectors: Mapping[str, PhiAccrualFailureDetector] = dataclasses.field(default_factory=dict)
    first_answer_due: Mapping[str, float] = dataclasses.field(default_factory=dict)
    redialled_at: Mapping[str, float] = dataclasses.field(default_factory=dict)
    heartbeat_sequence: int = 0
    probes: Mapping[str, Probe] = dataclasses.field(default_factory=dict)
    relayed: tuple[Relayed, ...] = ()
    local_health: int = 0
    heartbeat_sent_at: float | None = None
    answers_due: float | None = None
    last_step: float | None = None
    quiet_until: float = 0.0
    gossip_ticks: int = 0
    slow_gossip: bool = False  # its next gossip tick is a settled cluster's (``gossip_tick``)
    gossip_due: float | None = None  # when its next gossip tick is due
    gossip_lateness: float = 0.0  # how late its fast gossip ticks came lately (``speeds_up``)
    join: JoinProgress | None = None
    running: bool = False
    pending_unreachable: frozenset[str] = frozenset()
    unreachable_since: float = 0.0
    unstable_since: float | None = None
    heard_accused: Mapping[str, float] = dataclasses.field(default_factory=dict)
    leaving: bool = False
    termination: Termination | None = None

    @classmethod
    def create(
        cls, me: Member, settings: Settings, seed: int, wall_offset: float = 0.0
    ) -> NodeState:
        """A member that has not joined yet. ``wall_offset`` turns ``now`` into wall-clock time
        (for tombstones, which other members compare); ``seed`` seeds its random choices."""
        return cls(me=me, settings=settings, random=seed, wall_offset=wall_offset)

    @property
    def state(self) -> MembershipState:
        """The membership state this member has adopted."""
        return self.published.state

    @property
    def uuid(self) -> str:
        return self.me.uuid

    @property
    def joined(self) -> bool:
        return self.state.member(self.me.uuid) is not None


class Step:
    """One step under way: the node as it changes, and the effects so far (never shared)."""

    def __init__(self, node: NodeState, now: float) -> None:
        self.node = node
        self.now = now
        self.effects: list[Effect] = []
        self.rng = SplitMix(node.random)

    def result(self) -> tuple[NodeState, tuple[Effect, ...]]:
        """The node after this step, and the effects in the order they were made."""
        if self.node.running:
            self.node = dataclasses.replace(self.node, random=self.rng.state, last_step=self.now)
        elif self.rng.state != self.node.random:
            self.node = dataclasses.replace(self.node, random=self.rng.state)
        return self.node, tuple(self.effects)

    @property
    def quiet(self) -> bool:
        """True for a while after this member was paused: its view may be stale, so it welcomes
        no joiner and takes no leader action (``detection.discount_own_pause``)."""
        return self.now < self.node.quiet_until

    @property
    def state(self) -> MembershipState:
        return self.node.published.state

    @property
    def uuid(self) -> str:
        return self.node.me.uuid

    @property
    def wall_time(self) -> float:
        return self.now + self.node.wall_offset

    # -- joining ---------------------------------------------------------------------------

    def start_join(self, seeds: tuple[Address, ...], discovery: str | None = None) -> None:
        """Join through ``seeds``, and those ``discovery`` (when given) finds as it goes."""
        me = self.node.me.address
        deadline = self.now + self.node.settings.join_timeout
        self.node = dataclasses.replace(
            self.node, join=JoinProgress(seeds, deadline, configured=seeds, discovery=discovery)
        )
        if discovery is None and all(seed == me for seed in seeds):  # no seeds, or only itself
            self.form_cluster()
        else:
            self.try_join()

    def seeds_found(self, found: tuple[Address, ...]) -> None:
        """Take the seeds the discovery gives now; a changed set starts the rounds afresh (the
        first of the new seeds forms a cluster only once it has tried each other one twice)."""
        join = self.node.join
        if join is None or self.node.joined:
            return
        added = sorted(set(found) - set(join.configured))
        seeds = (*join.configured, *added)
        if join.found and seeds == join.seeds:
            return
        join = dataclasses.replace(join, seeds=seeds, found=True, attempt=0)
        self.node = dataclasses.replace(self.node, join=join)

    def try_join(self) -> None:
        """Send Join to the next seed; retry with backoff and jitter until joined or timed out
        (with ``join_retry_forever``, until joined: each attempt says how long it has waited).

        A member that is the first of its seeds forms the cluster itself once every other seed
        has been tried twice without an answer (so the seeds of a new cluster need no order).
        While a discovery has found nothing yet (and no seed but itself is configured), it looks
        again after ``join_backoff``.
        """
        join = self.node.join
        if join is None or self.node.joined:
            return
        settings = self.node.settings
        me = self.node.me.address
        seeds = [seed for seed in join.seeds if seed != me]
        waiting = join.discovery is not None and not join.found
        first = bool(join.seeds) and join.seeds[0] == me
        if first and not waiting and join.attempt >= len(seeds) * 2:
            self.form_cluster()
            return
        if self.now >= join.deadline and not settings.join_retry_forever:
            self.fail_join(
                f"no seed answered within {settings.join_timeout:g} s ({_tried(join, me)})"
            )
            return
        if not seeds:  # a discovery that has found none yet
            wait = settings.backoff(settings.join_backoff, 0, self.rng.random())
            self.effects.append(SetTimer(self._join_delay(wait), JoinAttempt(join.attempt)))
            return
        seed = seeds[join.attempt % len(seeds)]
        waited = self.now - (join.deadline - settings.join_timeout)
        self.effects.append(JoinTried(join.attempt + 1, seed, waited, _tried(join, me)))
        self.send(seed, Join(member=self.node.me))
        rounds = join.attempt // len(seeds)
        backoff = settings.backoff(settings.join_backoff, rounds, self.rng.random())
        self.node = dataclasses.replace(
            self.node, join=dataclasses.replace(join, attempt=join.attempt + 1)
        )
        self.effects.append(SetTimer(self._join_delay(backoff), JoinAttempt(join.attempt + 1)))

    def _join_delay(self, wait: float) -> float:
        """``wait``, cut to end at the join's deadline (so it fails on time, not one backoff
        late) unless the join retries without end."""
        join = self.node.join
        if self.node.settings.join_retry_forever or join is None:
            return wait
        return min(wait, join.deadline - self.now)

    def form_cluster(self) -> None:
        self.adopt(MembershipState.initial(self.node.me))
        self.joined_now(formed=True)

    def joined_now(self, formed: bool = False) -> None:
        """Start the protocol timers once this member is part of a cluster (``formed``: a new
        one of its own)."""
        settings = self.node.settings
        self.node = dataclasses.replace(
            self.node, running=True, join=None, unreachable_since=self.now
        )
        self._set_gossip_tick(settings.gossip_interval / settings.fast_gossip_factor)
        self.effects.append(SetTimer(settings.heartbeat_interval, HeartbeatTick()))
        self.effects.append(Joined(formed))

    def fail_join(self, reason: str, refused: bool = False) -> None:
        self.node = dataclasses.replace(self.node, join=None)
        self.effects.append(JoinFailed(reason, refused))

    # -- gossip ----------------------------------------------------------------------------

    def gossip_tick(self) -> None:
        """``fast_gossip_factor`` ticks per gossip interval: gossip on every one of them while a
        member has not seen the current version (``speeds_up``), else on every
        ``fast_gossip_factor``-th.

        Where nothing is under way (``settled``), one tick per interval, which gossips: the ticks
        between would do nothing, and each costs the process a wake-up of two threads. The fast
        ticks come back at once when something happens (``hasten_gossip``).
        """
        settings = self.node.settings
        node = self.node
        lateness = node.gossip_lateness * _LATENESS_DECAY
        if node.gossip_due is not None and not node.slow_gossip:  # (the grid moves slow ones)
            lateness = max(self.now - node.gossip_due, lateness)
        if self.settled:
            self.node = dataclasses.replace(
                node, gossip_ticks=0, slow_gossip=True, gossip_lateness=lateness
            )
            self.gossip_once()
            self._set_gossip_tick(settings.gossip_interval)
            return
        ticks = node.gossip_ticks + 1
        self.node = dataclasses.replace(
            node, gossip_ticks=ticks, slow_gossip=False, gossip_lateness=lateness
        )
        if ticks % settings.fast_gossip_factor == 0 or self.speeds_up(ticks):
            self.gossip_once()
        self._set_gossip_tick(settings.gossip_interval / settings.fast_gossip_factor)

    def _set_gossip_tick(self, delay: float) -> None:
        """The next gossip tick, ``delay`` from now; how late it comes says whether this
        member's process keeps up (``speeds_up``)."""
        self.effects.append(SetTimer(delay, GossipTick()))
        self.node = dataclasses.replace(self.node, gossip_due=self.now + delay)

    def speeds_up(self, ticks: int) -> bool:
        """Whether the ``ticks``-th tick since the member was last settled gossips before its
        turn: while a member has not seen the current version (``needs_fast_gossip``); but in
        a large cluster (``digest_first``) whose ticks came late lately, only the first such
        tick does, then one per interval.

        A tick comes late when the member's process is short of CPU. There the fast rate only
        adds work: each gossip moves a full state of O(members) bytes that its receiver decodes,
        validates and merges, while a change already goes out at once (the push on adoption). 200
        member processes on one 2-core host spent their CPU on gossip at the fast rate and took
        37-64 s to form, 10-16 s with this rule (docs/benchmarks.md, *200 members*). A member
        that keeps up (no fast tick late by a tenth of its interval in the last few seconds)
        keeps the fast rate: a version spreads in a third of the time (the fault simulator's
        clusters of 100 and 200, whose ticks are never late, converge after a healed partition
        in 5 rounds, where without it they took 11 and 12)."""
        if ticks > 1 and self.digest_first:
            settings = self.node.settings
            fast_interval = settings.gossip_interval / settings.fast_gossip_factor
            if self.node.gossip_lateness > fast_interval * _LATE_FRACTION:
                return False
        return needs_fast_gossip(self.state)

    @property
    def settled(self) -> bool:
        """Nothing under way here: a settled state (``MembershipState.is_settled``), no silent
        target being confirmed, no leave, no pause just discounted (``quiet``)."""
        node = self.node
        return (
            node.running
            and node.termination is None
            and not node.leaving
            and not node.probes
            and not node.pending_unreachable
            and not self.quiet
            and node.published.state.is_settled()
        )

    def hasten_gossip(self) -> None:
        """Run at the end of every step: once something is under way (a join, a leave, a silent
        target, a version some member has not seen), the next gossip tick is now, not the
        settled cluster's a gossip interval away, and the fast ticks follow it."""
        node = self.node
        if node.slow_gossip and node.running and not self.settled:
            self.node = dataclasses.replace(node, slow_gossip=False)
            self._set_gossip_tick(0.0)

    def gossip_once(self) -> None:
        """Gossip with one peer, preferring those that have not seen the current version.

        In a cluster of ``Settings.gossip_digest_first_members`` or more, send the version
        digest (``GossipStatus``) even to such a peer: the full state follows only where the
        exchange shows it is needed (the peer answers a digest newer than its own with its
        digest, then the full state goes; an older or concurrent one with its full state). A
        full state to a peer that had the version, or a newer one, was most of a join storm's
        gossip (docs/architecture.md, *Gossip*). A smaller cluster sends its full state to a
        peer that has not seen the version, and the digest to one that has."""
        settings = self.node.settings
        peer = choose_gossip_peer(self.state, self.uuid, self.rng, settings.gossip_unseen_bias)
        if peer is None:
            return
        full = not self.digest_first and peer.uuid not in self.state.seen
        self.gossip_to(peer.uuid, full=full)

    @property
    def digest_first(self) -> bool:
        """Whether this member gossips its digest first (``Settings.gossip_digest_first_members``:
        a large cluster)."""
        return len(self.state.members) >= self.node.settings.gossip_digest_first_members

    def gossip_to(self, uuid: str, full: bool) -> None:
        """Send this member's state (``full``) or just its version and seen set (the digest,
        ``GossipStatus.of``) to ``uuid``.

        Not once this member has left its own state (a leaver that has just adopted the gossip
        removing it): every peer would drop that gossip (rule ``sender-in-state``, which keeps a
        removed member from speaking for the cluster), and the cluster that removed it knows.
        """
        member = self.state.member(uuid)
        if member is None or self.state.member(self.uuid) is None:
            return
        state = self.state
        message: Gossip | GossipStatus
        if full:
            message = Gossip(from_uuid=self.uuid, to_uuid=uuid, state=state)
        else:
            me = state.member(self.uuid)
            joiner = me if me is not None and me.status is MemberStatus.JOINING else None
            message = GossipStatus.of(state, self.uuid, uuid, joiner)
        self.send(member.address, message)

    # -- leaving and finishing ---------------------------------------------------------------

    def leave(self) -> None:
        """Mark this member LEAVING (unless another member did already); the leader moves it on to
        EXITING and REMOVED. It waits
        ``leave_timeout`` for that (a later ``Leave`` starts the wait again)."""
        member = self.state.member(self.uuid)
        if member is not None and member.status < MemberStatus.DOWN:
            self.node = dataclasses.replace(self.node, leaving=True)
            if member.status < MemberStatus.LEAVING:
                self.adopt(self.state.set_status(self.uuid, MemberStatus.LEAVING, by=self.uuid))
        self.effects.append(SetTimer(self.node.settings.leave_timeout, LeaveTimedOut()))

    def leave_member(self, address: Address) -> None:
        """An operator's ``LeaveMember``: mark the member at ``address`` LEAVING (this member
        itself: ``leave``); it sees that and leaves (``adopt``)."""
        member = self.state.member_at(address)
        if member is None:
            return
        if member.uuid == self.uuid:
            self.leave()
        elif member.status < MemberStatus.LEAVING:
            self.adopt(self.state.set_status(member.uuid, MemberStatus.LEAVING, by=self.uuid))

    def down_member(self, address: Address) -> None:
        """An operator's ``DownMember``: mark the member at ``address`` DOWN."""
        member = self.state.member_at(address)
        if member is not None:
            self.adopt(down_members(self.state, frozenset({member.uuid}), by=self.uuid))

    def give_up_leaving(self) -> None:
        """``leave_timeout`` has passed since ``Leave`` and this member is not out yet (it would
        take no step then): it stops all the same, as ``stop()`` would; the others find it
        silent, and down and remove it."""
        timeout = self.node.settings.leave_timeout
        self.finish(TerminationKind.STOPPED, f"the leave was not confirmed within {timeout:g} s")

    def act_as_leader(self) -> None:
        """Leader actions: a no-op unless this member leads a converged state. Run on every tick
        and after every gossip, so a convergence is acted on the moment it happens."""
        if self.node.joined and self.node.termination is None and not self.quiet:
            self.adopt(leader_actions(self.state, self.uuid, self.wall_time))
            self.adopt(
                prune_tombstones(self.state, self.wall_time, self.node.settings.tombstone_ttl)
            )

    def finish_removed(self, reason: str) -> None:
        """The cluster has removed or downed this member: the end of a leave, or an exclusion."""
        member = self.state.member(self.uuid)
        downed = member is not None and member.status is MemberStatus.DOWN
        leaving = self.node.leaving and not downed
        self.finish(TerminationKind.LEFT if leaving else TerminationKind.REMOVED, reason)

    def finish(self, kind: TerminationKind, reason: str) -> None:
        """This member is out of the cluster for good: no more timers; tell the supervisor."""
        if self.node.termination is not None:
            return
        termination = Termination(kind, reason)
        self.node = dataclasses.replace(self.node, termination=termination, running=False)
        self.effects.append(termination)

    # -- adopting states ----------------------------------------------------------------------

    def adopt(self, new_state: MembershipState, push: bool = True) -> None:
        """Adopt ``new_state``: tell listeners, the ordering actor and clients; push a change of
        its own (``push``) to a peer at once (the ticks only mop up); say goodbye to members it
        removed."""
        old_state = self.state
        if new_state is old_state:
            return
        published, changed = self.node.published.publish(new_state)
        self.node = dataclasses.replace(self.node, published=published)
        self.effects.append(MembershipReached(new_state.version, new_state.tombstoned))
        if changed is None:
            return
        self.effects.append(changed)
        self.effects.append(Broadcast(ClientUpdate(state=new_state)))
        if push and self.node.running:
            self.gossip_once()
        me = new_state.member(self.uuid)
        for event in changed.events:
            if isinstance(event, MemberRemoved) and event.member.uuid != self.uuid:
                left = event.previous_status == MemberStatus.EXITING
                self.forget(event.member, goodbye=me is not None and left)
        if me is not None and me.status is MemberStatus.DOWN:
            self.finish_removed("the cluster downed this member")
        elif me is not None and me.status in _LEFT_BY_OTHERS and not self.node.leaving:
            self.leave()  # another member marked it LEAVING (an operator's LeaveMember there)

    def forget(self, member: Member, goodbye: bool) -> None:
        """Stop watching a removed member; ``goodbye``: it left, send it the state that removes
        it (it finishes its exit on that). Close the link unless another incarnation lives there."""
        node = self.node
        if member.uuid in node.detectors:
            self.node = dataclasses.replace(
                self.node, detectors={u: d for u, d in node.detectors.items() if u != member.uuid}
            )
        if goodbye:
            gossip = Gossip(from_uuid=self.uuid, to_uuid=member.uuid, state=self.state)
            self.send(member.address, gossip)
        if self.state.member_at(member.address) is None:
            self.effects.append(CloseLink(member.address, "the member there was removed"))

    def send(self, address: Address, message: MembershipMessage) -> None:
        self.effects.append(SendTo(address=address, message=message))

    def reply(self, link: int, message: MembershipMessage) -> None:
        """Answer on the link a request came in on."""
        self.effects.append(Reply(link=link, message=message))


def _tried(join: JoinProgress, me: Address) -> str:
    """The seeds a failed join tried (not itself), and where it looked for more."""
    tried = ", ".join(str(seed) for seed in join.seeds if seed != me)
    if join.discovery is None:
        return f"tried {tried}"
    found = f"{join.discovery} found {'no other seed' if join.found else 'nothing'}"
    return f"tried {tried}; {found}" if tried else found
