"""Events and member tables as text: the lines of ``membership watch`` and the demo."""

from __future__ import annotations

import time
from typing import Any

from messages.events import (
    ClientConnected,
    ClientDisconnected,
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    LifecycleEvent,
    MemberEvent,
)

__all__ = ["describe", "event_text", "member_rows", "table_text"]


def describe(event: ClusterEvent) -> dict[str, Any]:
    """One event as a flat dict (the JSON line of ``watch --json``)."""
    line: dict[str, Any] = {"event": type(event).__name__, "time": round(time.time(), 3)}
    if isinstance(event, MemberEvent):
        member = event.member
        line.update(
            uuid=member.uuid,
            address=str(member.address),
            status=member.status.name,
            up_number=member.up_number,
        )
    elif isinstance(event, LeaderChanged):
        line.update(leader=None if event.leader is None else str(event.leader))
    elif isinstance(event, LifecycleEvent):
        line.update(state=event.state.value)
        if isinstance(event, ClientConnected | ClientDisconnected):
            line.update(address=str(event.member))
        if isinstance(event, ClientDisconnected):
            line.update(reason=event.reason)
    return line


def event_text(event: ClusterEvent) -> str:
    """One event as a human-readable line."""
    fields = describe(event)
    if isinstance(event, MemberEvent):
        return (
            f"{fields['event']:<17} {fields['address']:<21} {fields['status']:<8} {fields['uuid']}"
        )
    if isinstance(event, LifecycleEvent):
        return (
            f"{fields['event']:<17} {fields.get('address', '')} {fields.get('reason', '')}".rstrip()
        )
    return f"{fields['event']:<17} {fields.get('leader')}"


def member_rows(state: CurrentClusterState) -> list[dict[str, Any]]:
    """The member table: one dict per member, oldest first."""
    return [
        {
            "uuid": member.uuid,
            "address": str(member.address),
            "status": member.status.name,
            "reachable": member.uuid not in state.unreachable,
            "up_number": member.up_number,
            "leader": member.address == state.leader,
            "lite": member.lite_member,
            "attributes": member.attributes,
        }
        for member in state.members
    ]


def table_text(state: CurrentClusterState) -> str:
    """The member table as aligned text; the leader is marked with ``*``."""
    lines = [
        f"{'':1} {'address':<21} {'status':<8} {'reach':<5} {'up#':>3}  {'uuid':<36}  attributes"
    ]
    for row in member_rows(state):
        attributes = ",".join(f"{k}={v}" for k, v in sorted(row["attributes"].items()))
        if row["lite"]:
            attributes = ",".join(filter(None, ["lite", attributes]))
        leader = "*" if row["leader"] else " "
        reachable = "yes" if row["reachable"] else "NO"
        lines.append(
            f"{leader} {row['address']:<21} {row['status']:<8} "
            f"{reachable:<5} {row['up_number']:>3}  {row['uuid']:<36}  {attributes}"
        )
    return "\n".join(lines)
