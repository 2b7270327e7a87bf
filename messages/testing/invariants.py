"""The safety rules a run of the simulator is checked against, after every step.

- no resurrection: a member a node has removed never comes back to it (a node may still learn
  of a member from a peer that has not heard of its removal yet: that is lag, which convergence
  ends, and the converged view must hold exactly the live members);
- per node, a member's status only moves forward, and each (member, event type) fires at most
  once (reachability and leader changes may repeat);
- no split brain: never two live members that each downed the other (a removal of a member that
  was DOWN counts; one of a member that exited is the end of its leave, not an exclusion);
- a member that leaves and completes its leave (it suffers no fault itself) is never reported
  unreachable. A leave that others' faults cut short (the leaver found itself in a minority and
  downed itself) is excused.

Convergence after the faults stop is a liveness rule, checked by the simulator itself.
"""

from __future__ import annotations

import dataclasses

from messages.events import (
    ClusterEvent,
    LeaderChanged,
    MemberDowned,
    MemberEvent,
    MemberReachable,
    MemberRemoved,
    MemberUnreachable,
)
from messages.member import MemberStatus
from messages.membership.state import MembershipState

__all__ = ["NodeHistory", "Violation", "WorldHistory"]

_REPEATABLE = (MemberUnreachable, MemberReachable, LeaderChanged)


@dataclasses.dataclass(frozen=True)
class Violation:
    """A broken rule: which one, at what simulated time, and what was seen."""

    rule: str
    time: float
    detail: str

    def __str__(self) -> str:
        return f"t={self.time:.3f}s {self.rule}: {self.detail}"


@dataclasses.dataclass
class NodeHistory:
    """What one incarnation has seen: the highest status of each member, the events that fired,
    and the members it removed."""

    uuid: str
    statuses: dict[str, MemberStatus] = dataclasses.field(default_factory=dict)
    fired: set[tuple[str, type[ClusterEvent]]] = dataclasses.field(default_factory=set)
    removed: set[str] = dataclasses.field(default_factory=set)
    removed_down: set[str] = dataclasses.field(default_factory=set)


class WorldHistory:
    """The histories of every incarnation of a run, and the checks over them."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeHistory] = {}
        self.leavers: set[str] = set()
        self.leaver_reports: list[Violation] = []
        self.violations: list[Violation] = []

    def node(self, uuid: str) -> NodeHistory:
        history = self.nodes.get(uuid)
        if history is None:
            history = self.nodes[uuid] = NodeHistory(uuid)
        return history

    def adopted(
        self, uuid: str, state: MembershipState, now: float, before: MembershipState | None = None
    ) -> None:
        """Node ``uuid`` adopted ``state`` (after ``before``): statuses move forward, nothing
        removed comes back. Members unchanged since ``before`` were checked then."""
        history = self.node(uuid)
        previous = before.by_uuid if before is not None else {}
        for member in state.members:
            if previous.get(member.uuid) is member:
                continue
            if member.uuid in history.removed:
                self._violate("resurrection", now, f"{uuid} holds {member.uuid} again")
            highest = history.statuses.get(member.uuid)
            if highest is not None and member.status < highest:
                self._violate(
                    "status-backwards",
                    now,
                    f"{uuid} moved {member.uuid} from {highest.name} to {member.status.name}",
                )
            else:
                history.statuses[member.uuid] = member.status

    def fired(self, uuid: str, events: tuple[ClusterEvent, ...], now: float) -> None:
        """Node ``uuid`` published ``events``: none twice; note removals."""
        history = self.node(uuid)
        for event in events:
            if not isinstance(event, MemberEvent):
                continue
            subject = event.member.uuid
            if isinstance(event, MemberUnreachable) and subject in self.leavers:
                report = Violation("leaver-unreachable", now, f"{uuid} reports leaver {subject}")
                self.leaver_reports.append(report)
            if isinstance(event, _REPEATABLE):
                continue
            key = (subject, type(event))
            if key in history.fired:
                self._violate("event-twice", now, f"{uuid} fired {type(event).__name__} {subject}")
            history.fired.add(key)
            if isinstance(event, MemberRemoved):
                history.removed.add(subject)
                if event.previous_status is MemberStatus.DOWN:
                    history.removed_down.add(subject)

    def excluded(self, uuid: str, state: MembershipState) -> set[str]:
        """The members node ``uuid`` holds downed, or removed once downed."""
        downed = {m.uuid for m in state.members if m.status is MemberStatus.DOWN}
        return downed | self.node(uuid).removed_down

    def check_split_brain(
        self,
        live: dict[str, MembershipState],
        events: dict[str, tuple[ClusterEvent, ...]],
        now: float,
    ) -> None:
        """After a step: a live node that just downed or removed a live member that holds it
        downed or removed in turn means two clusters."""
        for uuid, fired in events.items():
            for event in fired:
                if not isinstance(event, MemberDowned | MemberRemoved):
                    continue
                if (
                    isinstance(event, MemberRemoved)
                    and event.previous_status is not MemberStatus.DOWN
                ):
                    continue
                other = event.member.uuid
                if other == uuid or other not in live or uuid not in live:
                    continue
                if uuid in self.excluded(other, live[other]):
                    self._violate("split-brain", now, f"{uuid} and {other} excluded each other")

    def check_leavers(self, in_good_standing: set[str]) -> None:
        """At the end of a run, with the incarnations that are live or left gracefully: a report
        by one of them about a leaver that is one of them too is a violation. A leaver that was
        downed, or an observer that was (a member that was paused or cut off past its removal
        sees everyone fall silent), is excused."""
        for report in self.leaver_reports:
            observer, _, leaver = report.detail.partition(" reports leaver ")
            if leaver in in_good_standing and observer in in_good_standing:
                self.violations.append(report)

    def _violate(self, rule: str, now: float, detail: str) -> None:
        self.violations.append(Violation(rule, now, detail))
