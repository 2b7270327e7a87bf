"""Typed, immutable values and messages of pykka-membership, and the pure protocol core.

The local commands (``messages.local``) carry pykka refs, so they load on first use (PEP 562):
importing the pure core (``messages.membership`` and the like) never imports pykka.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messages.address import Address
from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberReachable,
    MemberRemoved,
    MemberUnreachable,
    MemberUp,
)
from messages.member import (
    DataMemberSelector,
    LiteMemberSelector,
    Member,
    MemberFilter,
    MemberSelector,
    MemberStatus,
    select_members,
)
from messages.membership.effects import Leave, MembershipChanged
from messages.vector_clock import Causality, VectorClock
from messages.wire.remote import register

if TYPE_CHECKING:
    from messages.local.commands import (
        AddCallbackListener,
        GetClusterState,
        GetMembers,
        InitialState,
        NextMember,
        RemoveListener,
        Subscribe,
        Unsubscribe,
    )

__all__ = [
    "AddCallbackListener",
    "Address",
    "Causality",
    "ClusterEvent",
    "CurrentClusterState",
    "DataMemberSelector",
    "GetClusterState",
    "GetMembers",
    "InitialState",
    "LeaderChanged",
    "Leave",
    "LiteMemberSelector",
    "Member",
    "MemberDowned",
    "MemberEvent",
    "MemberExited",
    "MemberFilter",
    "MemberJoined",
    "MemberLeft",
    "MemberReachable",
    "MemberRemoved",
    "MemberSelector",
    "MemberStatus",
    "MemberUnreachable",
    "MemberUp",
    "MembershipChanged",
    "NextMember",
    "RemoveListener",
    "Subscribe",
    "Unsubscribe",
    "VectorClock",
    "register",
    "select_members",
]

_LOCAL_COMMANDS = frozenset(
    {
        "AddCallbackListener",
        "GetClusterState",
        "GetMembers",
        "InitialState",
        "NextMember",
        "RemoveListener",
        "Subscribe",
        "Unsubscribe",
    }
)
"""The names of ``__all__`` that ``messages.local.commands`` defines, loaded on first use."""


def __getattr__(name: str) -> Any:
    """Load a local command on first use and keep it, so the next lookup is direct."""
    if name not in _LOCAL_COMMANDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from messages.local import commands

    value = getattr(commands, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LOCAL_COMMANDS)
