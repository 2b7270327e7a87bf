"""Adopting membership states: the events each one fires, and how a client follows a member.

A member and a client adopt states the same way (``Publication.publish``): the change is
diffed into events, numbered, and handed to the listener registry as one ``MembershipChanged``.
"""

from __future__ import annotations

import dataclasses

from messages.events import ClusterEvent, CurrentClusterState
from messages.membership.changes import cluster_state, diff
from messages.membership.effects import MembershipChanged
from messages.membership.state import MembershipState
from messages.vector_clock import Causality

__all__ = ["Publication", "follow", "shares_history"]


@dataclasses.dataclass(frozen=True, slots=True)
class Publication:
    """The adopted state, the number of its last change, and the snapshot listeners have seen."""

    state: MembershipState = dataclasses.field(default_factory=MembershipState)
    sequence: int = 0
    snapshot: CurrentClusterState = dataclasses.field(
        default_factory=lambda: cluster_state(MembershipState(), 0)
    )

    def publish(self, new_state: MembershipState) -> tuple[Publication, MembershipChanged | None]:
        """Adopt ``new_state``: the new publication, and the change to tell the listeners (None
        when nothing a listener sees has changed; the same object is no change at all)."""
        if new_state is self.state:
            return self, None
        events = diff(self.state, new_state, self.sequence + 1)
        if not events:
            return dataclasses.replace(self, state=new_state), None
        sequence = self.sequence + 1
        snapshot = cluster_state(new_state, sequence)
        published = Publication(new_state, sequence, snapshot)
        return published, MembershipChanged(events=events, state=snapshot)

    def announce(self, event: ClusterEvent) -> MembershipChanged:
        """An event that is not a state change (a client's connection), for the listeners."""
        return MembershipChanged(events=(event,), state=self.snapshot)


def shares_history(a: MembershipState, b: MembershipState) -> bool:
    """True when ``a`` and ``b`` know a common incarnation (as a member or a tombstone).

    States of one cluster always do, once either knows anyone; a cluster that was stopped and
    started again is made of new incarnations and knows none of the old ones.
    """
    known = {m.uuid for m in a.members} | a.tombstoned
    return any(m.uuid in known for m in b.members) or not known.isdisjoint(b.tombstoned)


def follow(
    view: MembershipState, pushed: MembershipState, in_step: bool
) -> tuple[MembershipState, bool]:
    """A client's view after its member pushed ``pushed``, and whether the client is now in step
    with that member (``in_step`` says whether it was before this push).

    A member pushes its states in the order it adopts them, so once the client is in step every
    push is the member's newer view, taken as it is (a lone member's last state, which removes it,
    has an empty clock: comparing clocks would drop it). Until then, after a (re)connection: a
    state of another cluster incarnation replaces the view (the diff reports the old members
    removed and the new ones added), and a state of the same one is received as gossip is (AFTER or
    SAME puts the client in step; CONCURRENT merges; BEFORE, a member that lags, is left until it
    catches up), so a fail-over never moves a member backwards nor fires a change twice.
    """
    if in_step or not shares_history(view, pushed):
        return pushed, True
    received, causality = view.receive(pushed, "")
    return received, causality in (Causality.AFTER, Causality.SAME)
