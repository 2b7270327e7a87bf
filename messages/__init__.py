"""Typed, immutable values and messages of pykka-membership, and the pure protocol core."""

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
