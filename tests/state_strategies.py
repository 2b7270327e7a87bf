"""Hypothesis strategies for membership states as a peer could send them: decodable, not honest.

``any_states`` draws every field independently from a small pool of uuids and addresses, so the
states hit the inconsistencies a forged or corrupted gossip can carry (REMOVED members marked
unreachable, observers marking themselves, tombstoned members still listed, duplicate uuids...)
far more often than uniform random data would.
"""

from __future__ import annotations

from hypothesis import strategies as st

from messages.address import Address
from messages.member import Member, MemberStatus
from messages.state import MembershipState, ReachabilityRow
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
