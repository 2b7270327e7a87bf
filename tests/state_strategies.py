"""Membership states as a peer could send them: decodable, not necessarily honest.

``any_states`` draws every field independently from a small pool of uuids and addresses, so the
states hit the inconsistencies a forged or corrupted gossip can carry (REMOVED members marked
unreachable, observers marking themselves, tombstoned members still listed, duplicate uuids...)
far more often than uniform random data would. ``plausible_states`` are built by the core's own
rules, so they pass validation and reach the protocol. ``BROKEN_STATES`` break an honest state in
exactly one way each, keyed by the validation rule that must catch it.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from hypothesis import strategies as st

from messages.address import Address
from messages.member import Member, MemberStatus
from messages.membership.leader import leader_actions
from messages.membership.state import MembershipState, ReachabilityRow
from messages.vector_clock import VectorClock

UUID_POOL = tuple(f"00000000-0000-4000-8000-{i:012d}" for i in range(6))
ADDRESS_POOL = tuple(Address("127.0.0.1", 7000 + i) for i in range(4))

uuids = st.sampled_from(UUID_POOL)
uuid_sets = st.frozensets(uuids, max_size=len(UUID_POOL))
counters = st.integers(min_value=0, max_value=6)

members = st.builds(
    Member,
    uuid=uuids,
    address=st.sampled_from(ADDRESS_POOL),
    status=st.sampled_from(MemberStatus),
    up_number=counters,
    lite_member=st.booleans(),
)
rows = st.builds(ReachabilityRow, observer=uuids, version=counters, unreachable=uuid_sets)
clocks = st.builds(VectorClock, st.dictionaries(uuids, counters, max_size=len(UUID_POOL)))
tombstones = st.lists(st.tuples(uuids, st.floats(min_value=0, max_value=1e9)), max_size=3).map(
    tuple
)


@st.composite
def any_states(draw: st.DrawFn) -> MembershipState:
    """A decodable state; sorted as the core keeps members, so more of them get past the first
    rule, but otherwise unconstrained."""
    drawn = draw(st.lists(members, max_size=len(UUID_POOL)))
    if draw(st.booleans()):
        drawn.sort(key=lambda member: (member.address, member.uuid))
    return MembershipState(
        members=tuple(drawn),
        seen=draw(uuid_sets),
        reachability=tuple(draw(st.lists(rows, max_size=4))),
        version=draw(clocks),
        tombstones=draw(tombstones),
    )


@st.composite
def plausible_states(draw: st.DrawFn) -> MembershipState:
    """A state the core could have built: a cluster of pool members after a few local changes."""
    size = draw(st.integers(min_value=1, max_value=len(UUID_POOL)))
    members = [
        Member.create(Address("127.0.0.1", 7000 + i), member_uuid=UUID_POOL[i]) for i in range(size)
    ]
    first = members[0].uuid
    state = leader_actions(MembershipState.initial(members[0]), first, 0.0)
    for member in members[1:]:
        state = state.add_joining(member, by=first)
    for step in range(draw(st.integers(min_value=0, max_value=5))):
        actor = draw(st.sampled_from(state.members)).uuid
        subject = draw(st.sampled_from(state.members))
        match draw(st.sampled_from(["lead", "down", "leave", "row", "seen"])):
            case "lead":
                state = leader_actions(state.with_seen(frozenset(UUID_POOL)), actor, float(step))
            case "down" if subject.status < MemberStatus.DOWN:
                state = state.set_status(subject.uuid, MemberStatus.DOWN, by=actor)
            case "leave" if subject.status < MemberStatus.LEAVING:
                state = state.set_status(subject.uuid, MemberStatus.LEAVING, by=subject.uuid)
            case "row" if subject.uuid != actor:
                state = state.set_reachability(actor, frozenset({subject.uuid}))
            case "seen":
                state = state.seen_by(subject.uuid)
    return state


def _replace(state: MembershipState, **changes: object) -> MembershipState:
    return msgspec.structs.replace(state, **changes)


def _ids(state: MembershipState) -> list[str]:
    return sorted(member.uuid for member in state.members)


def _changed(state: MembershipState, index: int, **changes: object) -> MembershipState:
    """``state`` with its ``index``-th member (by uuid) changed."""
    uuid = _ids(state)[index]
    return _replace(
        state,
        members=tuple(
            msgspec.structs.replace(m, **changes) if m.uuid == uuid else m for m in state.members
        ),
    )


def _row(state: MembershipState, observer: int, version: int, *subjects: str) -> ReachabilityRow:
    return ReachabilityRow(_ids(state)[observer], version, frozenset(subjects))


def removed_but_unreachable(state: MembershipState) -> MembershipState:
    """The gossip that crashed leaders: a REMOVED member still listed and marked unreachable."""
    removed = _changed(state, -1, status=MemberStatus.REMOVED)
    return _replace(removed, reachability=(_row(state, 0, 1, _ids(state)[-1]),))


STRANGER = "ffffffff-0000-4000-8000-000000000000"

BROKEN_STATES: dict[str, Callable[[MembershipState], MembershipState]] = {
    "unique-members": lambda s: _replace(s, members=(*s.members, s.members[0])),
    "members-sorted": lambda s: _replace(s, members=tuple(reversed(s.members))),
    "no-removed-members": removed_but_unreachable,
    "joining-not-up": lambda s: _changed(s, -1, status=MemberStatus.JOINING),
    "up-has-up-number": lambda s: _changed(s, -1, up_number=0),
    "seen-are-members": lambda s: _replace(s, seen=s.seen | {STRANGER}),
    "clock-entries-are-members": lambda s: _replace(s, version=s.version.increment(STRANGER)),
    "rows-sorted-unique": lambda s: _replace(s, reachability=(_row(s, 1, 1), _row(s, 0, 1))),
    "row-observer-is-member": lambda s: _replace(
        s, reachability=(ReachabilityRow(STRANGER, 1, frozenset({_ids(s)[0]})),)
    ),
    "row-version-positive": lambda s: _replace(s, reachability=(_row(s, 0, 0, _ids(s)[1]),)),
    "row-not-about-itself": lambda s: _replace(s, reachability=(_row(s, 0, 2, *_ids(s)[:2]),)),
    "row-subjects-are-members": lambda s: _replace(s, reachability=(_row(s, 0, 1, STRANGER),)),
    "terminated-are-unreachable": lambda s: _replace(
        s, reachability=(ReachabilityRow(_ids(s)[0], 1, frozenset(), frozenset({_ids(s)[1]})),)
    ),
    "tombstones-sorted-unique": lambda s: _replace(s, tombstones=(("z", 1.0), ("y", 1.0))),
    "tombstone-times-finite": lambda s: _replace(s, tombstones=(("z", float("nan")),)),
    "tombstoned-not-member": lambda s: _replace(s, tombstones=((_ids(s)[-1], 1.0),)),
}
"""Each breaks an honest state of at least two UP members in one way, named by its rule."""
