"""Commands and replies that the actors of one node exchange (never sent over the wire)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import msgspec

from messages.events import ClusterEvent, CurrentClusterState
from messages.member import Member, SelectorLike

MemberCallback = Callable[[Member], Any]


class InitialState(enum.Enum):
    """What a new subscriber receives first, atomically with its registration."""

    NONE = "none"  # only live events
    EVENTS = "events"  # the current state replayed as events (MemberUp for each up member, ...)
    SNAPSHOT = "snapshot"  # one CurrentClusterState


class Subscribe(msgspec.Struct, frozen=True):
    """Register ``subscriber`` (a pykka ActorRef) for events of the given types. Replies the id."""

    subscriber: Any
    events: tuple[type[ClusterEvent], ...] = (ClusterEvent,)
    initial_state: InitialState = InitialState.EVENTS


class Unsubscribe(msgspec.Struct, frozen=True):
    """Drop every registration of ``subscriber``. Replies True if there was one."""

    subscriber: Any


class AddCallbackListener(msgspec.Struct, frozen=True):
    """Hazelcast-style listener: functions called on MemberUp/MemberRemoved. Replies the id."""

    member_added: MemberCallback | None = None
    member_removed: MemberCallback | None = None
    fire_for_existing: bool = False


class RemoveListener(msgspec.Struct, frozen=True):
    """Remove a registration by id. Replies True the first time, then False."""

    registration_id: str


class GetMembers(msgspec.Struct, frozen=True):
    """Ask for the up members (age order), filtered by ``selector``. Replies ``tuple[Member, ...]``."""

    selector: SelectorLike = None


class GetClusterState(msgspec.Struct, frozen=True):
    """Ask for the current ``CurrentClusterState``."""


class NextMember(msgspec.Struct, frozen=True):
    """Ask the load balancer for the next member (or None) accepted by ``selector``."""

    selector: SelectorLike = None


class MembershipChanged(msgspec.Struct, frozen=True):
    """Membership actor -> listener registry: one state change, its events and the new snapshot."""

    events: tuple[ClusterEvent, ...]
    state: CurrentClusterState


class Leave(msgspec.Struct, frozen=True):
    """Ask this node's member to leave the cluster gracefully."""
