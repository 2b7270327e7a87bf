"""StatePublisher: turns each new membership state into events for the listener registry."""

from __future__ import annotations

from typing import Any

import pykka

from messages.commands import MembershipChanged
from messages.core.state import MembershipState, cluster_state, diff
from messages.events import ClusterEvent


class StatePublisher:
    """Owned by one actor (a member's or a client's): holds the current state and its snapshot.

    Each adopted state is diffed against the previous one and told to the registry as one
    ``MembershipChanged``, so listeners see changes in state-version order, none twice.
    """

    def __init__(self, listeners: pykka.ActorRef[Any]) -> None:
        self._listeners = listeners
        self.state = MembershipState()
        self.sequence = 0
        self.snapshot = cluster_state(self.state, 0)

    def publish(self, new_state: MembershipState) -> tuple[ClusterEvent, ...]:
        """Adopt ``new_state``; returns the events it produced (none when it is the same object)."""
        old_state = self.state
        if new_state is old_state:
            return ()
        self.state = new_state
        events = diff(old_state, new_state, self.sequence + 1)
        if events:
            self.sequence += 1
            self.snapshot = cluster_state(new_state, self.sequence)
            self._listeners.tell(MembershipChanged(events=events, state=self.snapshot))
        return events

    def announce(self, event: ClusterEvent) -> None:
        """Tell the registry an event that is not a state change (a client's connection)."""
        self._listeners.tell(MembershipChanged(events=(event,), state=self.snapshot))
