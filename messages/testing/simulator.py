"""A deterministic simulator: N members running the real step function over a simulated network.

One seed fixes everything: the fault schedule, every latency, loss and duplication, and each
member's random choices, so a failing seed replays exactly. There are no threads, sockets or
clocks; a heap of timed events drives ``messages.membership.step.step``, and the effects it returns
are carried out here the way the actors carry them out over TCP (``SendTo`` to an address, ``Reply``
on the link a message came in on, ``SetTimer``, ``Termination``; a ``SendTo`` to the address of a
crashed process, or of a stopped one (a node that terminated stops its transport), comes back as a
refusal, ``PeerGone``, while partitions, pauses, deaf and cut members stay silent), and counted
by type (where the membership actor logs news such as ``Suspected`` or ``Dropped``, the simulator
counts it). After every step the rules of ``invariants`` are checked;
after the last fault, every live member must converge to the same view.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any

from messages.address import Address
from messages.events import ClusterEvent, MemberDowned, MemberRemoved
from messages.member import Member, MemberStatus
from messages.membership.effects import (
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    Input,
    JoinCluster,
    JoinFailed,
    Leave,
    MembershipChanged,
    PeerGone,
    Reply,
    SendTo,
    SetTimer,
    Termination,
    TerminationKind,
    TimerMessage,
)
from messages.membership.leader import leader_actions
from messages.membership.node import NodeState
from messages.membership.publication import Publication
from messages.membership.state import MembershipState
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.faults import Fault, FaultKind, Network, schedule_faults
from messages.testing.invariants import Violation, WorldHistory
from messages.wire.handshake import Identity, Role

__all__ = ["Outcome", "Simulation", "converged_cluster"]

HOST = "10.0.0.1"
BASE_PORT = 5701


@dataclasses.dataclass
class _Member:
    """One incarnation in the simulated world."""

    index: int
    node: NodeState
    link: int
    timers: dict[type, int] = dataclasses.field(default_factory=dict)
    paused_until: float = 0.0
    limp: Fault | None = None
    crashed: bool = False

    @property
    def live(self) -> bool:
        return not self.crashed and self.node.termination is None

    @property
    def identity(self) -> Identity:
        """Who its messages come from, as a link's handshake would say."""
        return Identity(self.node.uuid, Role.MEMBER, self.node.me.address)

    def wakes_at(self, now: float) -> float:
        """When this member runs again after a pause or a limp's freeze (``now``: it runs)."""
        wake = self.limp.wakes_at(now) if self.limp is not None else now
        return max(wake, self.paused_until)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a run went: its violations, the rounds to converge after the last fault (None when
    it did not), the steps taken, and the last steps before the end (the replayable trace)."""

    seed: int
    members: int
    violations: tuple[Violation, ...]
    rounds_to_converge: float | None
    steps: int
    faults: tuple[Fault, ...]
    trace: tuple[str, ...]
    survivors: int
    effects: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """How many effects of each type the members' steps returned."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self) -> str:
        """A short text to replay and read a failing run by."""
        lines = [f"seed {self.seed}, {self.members} members: {len(self.violations)} violation(s)"]
        lines += [f"  {violation}" for violation in self.violations[:5]]
        lines.append("faults:")
        lines += [f"  {fault}" for fault in self.faults]
        lines.append(f"last {len(self.trace)} steps:")
        lines += [f"  {line}" for line in self.trace]
        lines.append(f"replay: Simulation(seed={self.seed}, members={self.members}).run()")
        return "\n".join(lines)


class Simulation:
    """One seeded run: bootstrap ``members`` members, apply the seed's faults, then check that
    the live members converge within ``settle_rounds`` gossip rounds (default: detection, the
    downing delay and removal, plus 4 log2(N) + 10 rounds of gossip). With ``new_faults`` false
    a drawn schedule has no limping, deaf or partly cut member (``faults.NEW_KINDS``)."""

    def __init__(
        self,
        seed: int,
        members: int = 5,
        settings: Settings | None = None,
        faults: int | Sequence[Fault] | None = None,
        trace_length: int = 40,
        settle_rounds: float | None = None,
        start_converged: bool = False,
        new_faults: bool = True,
    ) -> None:
        if members < 1:
            raise ValueError(f"a simulation needs at least one member, got {members}")
        self.seed = seed
        self.size = members
        self.settings = settings or Settings.lan()
        self.rng = random.Random(seed)
        self.history = WorldHistory()
        self.now = 0.0
        self.steps = 0
        self.effects: Counter[str] = Counter()
        self._events: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self._links = itertools.count(1)
        self._by_link: dict[int, _Member] = {}
        self._at: dict[int, _Member] = {}  # the current incarnation at each address index
        self._members: list[_Member] = []  # every incarnation, in start order
        self._trace: deque[str] = deque(maxlen=trace_length)
        interval = self.settings.gossip_interval
        settle = self.settings.heartbeat_interval + self.settings.acceptable_heartbeat_pause
        settle += self.settings.down_after + 5 * interval
        self.settle_rounds = settle_rounds or (
            settle / interval + 4 * math.ceil(math.log2(members + 1)) + 10
        )
        self.start_converged = start_converged
        if faults is None or isinstance(faults, int):
            count = faults if faults is not None else self.rng.randint(2, 6)
            self.faults = schedule_faults(self.rng, members, count, 5.0, new_faults)
        else:
            self.faults = sorted(faults, key=lambda fault: (fault.at, fault.kind.value))
        self.network = Network(self.faults)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        if self.start_converged:
            self._start_converged()
        else:
            for index in range(self.size):
                self._start(index, at=0.05 * index)
        for fault in self.faults:
            self._push(fault.at, fault)
        quiet_from = max((f.until for f in self.faults), default=5.0)
        deadline = quiet_from + self.settle_rounds * self.settings.gossip_interval
        converged_at: float | None = None
        next_check = quiet_from
        while self._events and not self.history.violations:
            at, _, event = self._events[0]
            if at > deadline:
                break
            heapq.heappop(self._events)
            self.now = at
            self._handle(event)
            if self.now >= next_check:
                next_check = self.now + self.settings.gossip_interval / 2
                if self._converged():
                    converged_at = self.now
                    break
        if converged_at is None and not self._events and self._converged():
            converged_at = self.now  # every member has stopped: nothing left to disagree
        self.history.check_leavers({m.node.uuid for m in self._members if _in_good_standing(m)})
        if converged_at is None and not self.history.violations:
            self.history.violations.append(Violation("no-convergence", self.now, self._views()))
        rounds = None
        if converged_at is not None:
            rounds = (converged_at - quiet_from) / self.settings.gossip_interval
        return Outcome(
            seed=self.seed,
            members=self.size,
            violations=tuple(self.history.violations),
            rounds_to_converge=rounds,
            steps=self.steps,
            faults=tuple(self.faults),
            trace=tuple(self._trace),
            survivors=sum(1 for m in self._at.values() if m.live),
            effects=dict(self.effects),
        )

    def _handle(self, event: Any) -> None:
        match event:
            case Fault():
                self._apply(event)
            case (_Member() as member, message):
                if member.crashed or member is not self._at.get(member.index):
                    return  # for an incarnation that is gone
                wake = member.wakes_at(self.now)
                if wake > self.now:
                    self._push(wake, event)  # it runs on after the pause
                else:
                    self._step(member, message)
            case _:
                raise TypeError(f"unknown simulator event {event!r}")

    # -- members ------------------------------------------------------------------------------

    def _start(self, index: int, at: float) -> None:
        """A new incarnation at address ``index``; it joins through the first two addresses."""
        incarnation = sum(1 for m in self._members if m.index == index)
        me = Member.create(_address(index), member_uuid=_uuid(index, incarnation))
        node = NodeState.create(me, self.settings, seed=self.rng.getrandbits(64))
        member = self._register(index, node)
        self.history.node(me.uuid)
        # The first member forms the cluster; later ones join through the first two addresses,
        # never listing themselves first (a first seed that hears nobody forms a new cluster).
        if index == 0 and at == 0.0:
            seeds: tuple[Address, ...] = (_address(0),)
        else:
            seeds = (_address(1), _address(0)) if index == 0 else (_address(0), _address(1))
        self._push(at, (member, JoinCluster(seeds=seeds)))

    def _start_converged(self) -> None:
        """All members UP and running from the start, their timers at random phases (for
        measuring one fault on a large cluster without simulating its formation)."""
        state = converged_cluster(self.size)
        published, _ = Publication().publish(state)
        settings = self.settings
        for index in range(self.size):
            me = Member.create(_address(index), member_uuid=_uuid(index, 0))
            node = NodeState.create(me, settings, seed=self.rng.getrandbits(64))
            node = dataclasses.replace(node, published=published, running=True, last_step=0.0)
            member = self._register(index, node)
            self.history.adopted(me.uuid, state, 0.0)
            tick = settings.gossip_interval / settings.fast_gossip_factor
            for delay, timer in (
                (tick, GossipTick()),
                (settings.heartbeat_interval, HeartbeatTick()),
            ):
                self._carry_out(member, SetTimer(self.rng.uniform(0.0, delay), timer))

    def _register(self, index: int, node: NodeState) -> _Member:
        member = _Member(index, node, link=next(self._links))
        self._by_link[member.link] = member
        self._at[index] = member
        self._members.append(member)
        return member

    def _step(self, member: _Member, message: Input | _Timer) -> None:
        before = member.node
        if isinstance(message, _Timer):
            if member.timers.get(type(message.message)) != message.token:
                return  # replaced by a later timer of its kind
            message = message.message
        self._trace.append(f"{self.now:9.3f} {before.uuid:<14} <- {_describe(message)}")
        try:
            member.node, effects = step(before, message, self.now)
        except Exception as error:  # a bug in the core: the run fails with its trace
            self.history.violations.append(Violation("step-raised", self.now, repr(error)))
            return
        self.steps += 1
        uuid = before.uuid
        if member.node.state is not before.state:
            self.history.adopted(uuid, member.node.state, self.now, before.state)
        fired: tuple[ClusterEvent, ...] = ()
        for effect in effects:
            self.effects[type(effect).__name__] += 1
            self._carry_out(member, effect)
            if isinstance(effect, MembershipChanged):
                fired += effect.events
                self.history.fired(uuid, effect.events, self.now)
        if any(isinstance(event, MemberDowned | MemberRemoved) for event in fired):
            live = {m.node.uuid: m.node.state for m in self._at.values() if m.live}
            self.history.check_split_brain(live, {uuid: fired}, self.now)

    def _carry_out(self, member: _Member, effect: Effect) -> None:
        match effect:
            case SendTo(address=address, message=message):
                target = self._at.get(address.port - BASE_PORT)
                if target is not None and target.node.me.address == address:
                    if not target.live:  # crashed, or stopped: nothing listens there
                        self._refuse(member, target)
                    else:
                        self._send(member, target, message)
            case Reply(link=link, message=message):
                target = self._by_link.get(link)
                if target is not None and target is self._at.get(target.index):
                    self._send(member, target, message)
            case SetTimer(delay=delay, message=message):
                token = next(self._order)
                member.timers[type(message)] = token
                self._push(self.now + delay, (member, _Timer(token, message)))
            case JoinFailed():
                member.crashed = True  # a node that cannot join stops (start_member raises)
            case Termination():
                member.timers.clear()
            case _:
                pass  # transport, listener and ordering messages, news: nothing to simulate

    def _send(self, sender: _Member, target: _Member, message: Any) -> None:
        for delay in self.network.deliveries(self.rng, sender.index, target.index, self.now):
            inbound = Inbound(message, sender.link, sender.node.uuid, sender.identity)
            self._push(self.now + delay, (target, inbound))

    def _refuse(self, sender: _Member, target: _Member) -> None:
        """A dial to a crashed process's address is refused: the sender hears of it after the
        usual latency, unless the network between them is silent (cut, partitioned, deaf)."""
        if not self.network.delivers(target.index, sender.index):
            return
        delay = next(self.network.deliveries(self.rng, sender.index, target.index, self.now), None)
        if delay is not None:
            refusal = PeerGone(target.node.me.address, refused=True)
            self._push(self.now + delay, (sender, refusal))

    def _push(self, at: float, event: Any) -> None:
        heapq.heappush(self._events, (at, next(self._order), event))

    # -- faults -------------------------------------------------------------------------------

    def _apply(self, fault: Fault) -> None:
        self._trace.append(f"{self.now:9.3f} {'fault':<14}    {fault}")
        member = self._at.get(fault.target) if fault.target is not None else None
        match fault.kind:
            case FaultKind.CRASH if member is not None:
                member.crashed = True
            case FaultKind.RESTART if member is not None and not member.live:
                self._start(fault.target or 0, at=self.now)
            case FaultKind.PAUSE if member is not None:
                member.paused_until = max(member.paused_until, fault.until)
            case FaultKind.LIMP if member is not None:
                member.limp = fault
            case FaultKind.JOIN:
                index = max(self._at) + 1
                self._start(index, at=self.now)
            case FaultKind.LEAVE if member is not None and member.live:
                self.history.leavers.add(member.node.uuid)
                self._step(member, Leave())  # now: a leave under way is no convergence
            case (
                FaultKind.PARTITION
                | FaultKind.ONE_WAY
                | FaultKind.DEGRADE
                | FaultKind.DEAF
                | FaultKind.CUT
                | FaultKind.HEAL
            ):
                self.network.apply(fault)
            case _:
                pass  # the target is gone already

    # -- convergence ----------------------------------------------------------------------------

    def _converged(self) -> bool:
        """Every live member holds the same converged view: exactly the live members, all UP,
        none unreachable, none still joining or leaving."""
        live = [m for m in self._at.values() if m.live]
        if any(not m.node.running or m.node.leaving for m in live):
            return False  # still joining, or leaving
        uuids = {m.node.uuid for m in live}
        states = [m.node.state for m in live]
        return all(_settled(state, uuids) for state in states) and all(
            state.version == states[0].version for state in states
        )

    def _views(self) -> str:
        views = []
        for member in self._at.values():
            if member.live:
                state = member.node.state
                view = ",".join(f"{m.uuid}:{m.status.name[:2]}" for m in state.members)
                views.append(
                    f"{member.node.uuid}[{view} unreachable={sorted(state.unreachable())}]"
                )
        return "; ".join(views) or "no live member"


@dataclasses.dataclass(frozen=True)
class _Timer:
    """A timer a member set; it fires unless a later one of its kind replaced it."""

    token: int
    message: TimerMessage


def _in_good_standing(member: _Member) -> bool:
    """Live, or left gracefully."""
    termination = member.node.termination
    if termination is None:
        return not member.crashed
    return termination.kind is TerminationKind.LEFT


def _settled(state: MembershipState, uuids: set[str]) -> bool:
    return (
        {m.uuid for m in state.members} == uuids
        and all(m.status is MemberStatus.UP for m in state.members)
        and not state.unreachable()
        and state.is_converged()
    )


def converged_cluster(n: int, host: str = HOST, base_port: int = BASE_PORT) -> MembershipState:
    """The state of an n-member cluster, all UP, seen by all, built by the core's own rules.

    The first member forms the cluster, admits the others, and as leader moves them all to UP.
    Members have the uuids ``member-00000``, ``member-00001``, ... at consecutive ports.
    """
    if n < 1:
        raise ValueError(f"A cluster needs at least one member, got n={n}")
    members = [
        Member.create(Address(host, base_port + i), member_uuid=_uuid(i, 0)) for i in range(n)
    ]
    seed = members[0].uuid
    state = leader_actions(MembershipState.initial(members[0]), seed, now=0.0)
    for member in members[1:]:
        state = state.add_joining(member, by=seed)
    state = leader_actions(state, seed, now=0.0)
    return state.replaced(seen=frozenset(m.uuid for m in members))


def _uuid(index: int, incarnation: int) -> str:
    """``member-00003`` for the first incarnation at address 3, ``member-00003.1`` after it."""
    return f"member-{index:05d}" + (f".{incarnation}" if incarnation else "")


def _address(index: int) -> Address:
    return Address(HOST, BASE_PORT + index)


def _describe(message: Any) -> str:
    if isinstance(message, Inbound):
        return f"{type(message.message).__name__} from {message.peer}"
    return type(message).__name__
