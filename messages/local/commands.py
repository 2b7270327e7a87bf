"""Commands and replies that the actors of one node exchange (never sent over the wire)."""

from __future__ import annotations

import enum
import reprlib
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
import pykka

from messages.events import ClusterEvent, CurrentClusterState, LifecycleState
from messages.member import Member, MemberFilter, check_member_filter

__all__ = [
    "AddCallbackListener",
    "AddLifecycleListener",
    "CallbackCall",
    "GetClusterState",
    "GetConnection",
    "GetEvents",
    "GetHealth",
    "GetMembers",
    "HealthReport",
    "InitialState",
    "Listen",
    "MemberCallback",
    "NextMember",
    "RemoveListener",
    "RunCallbacks",
    "Subscribe",
    "Unsubscribe",
    "UnwatchEvents",
    "WatchEvents",
]

MemberCallback = Callable[[Member], object]
"""A Hazelcast-style membership listener function; what it returns is ignored."""


def _check_actor(name: str, actor: object) -> None:
    if not isinstance(actor, pykka.ActorRef):
        raise TypeError(f"{name} must be a pykka ActorRef, not {type(actor).__name__}")


class InitialState(enum.Enum):
    """What a new subscriber receives first, atomically with its registration."""

    NONE = "none"  # only live events
    EVENTS = "events"  # the current state replayed as events (MemberUp for each up member, ...)
    SNAPSHOT = "snapshot"  # one CurrentClusterState


class Subscribe(msgspec.Struct, frozen=True):
    """Register ``subscriber`` (a pykka ActorRef) for events of the given types. Replies the id."""

    subscriber: pykka.ActorRef[Any]
    events: tuple[type[ClusterEvent], ...] = (ClusterEvent,)
    initial_state: InitialState = InitialState.EVENTS

    def __post_init__(self) -> None:
        _check_actor("subscriber", self.subscriber)
        events = self.events
        if not isinstance(events, tuple) or not events:
            raise ValueError(
                f"events must be a non-empty tuple of ClusterEvent types, not {events!r}"
            )
        for event_type in events:
            if not (isinstance(event_type, type) and issubclass(event_type, ClusterEvent)):
                raise TypeError(f"events must be ClusterEvent subclasses, not {event_type!r}")
        if not isinstance(self.initial_state, InitialState):
            raise TypeError(f"initial_state must be an InitialState, not {self.initial_state!r}")


class Unsubscribe(msgspec.Struct, frozen=True):
    """Drop every registration of ``subscriber``. Replies True if there was one."""

    subscriber: pykka.ActorRef[Any]

    def __post_init__(self) -> None:
        _check_actor("subscriber", self.subscriber)


def _check_callback(name: str, callback: object) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable or None, not {type(callback).__name__}")


class AddCallbackListener(msgspec.Struct, frozen=True):
    """Hazelcast-style listener: functions called on MemberUp/MemberRemoved. Replies the id.

    With ``fire_for_existing``, ``member_added`` is first called for each current member, in age
    order, before any later event: the registry hands those calls to the callback runner before it
    replies, so a ``RunCallbacks(())`` asked of the runner after the reply is answered once they
    have run.
    """

    member_added: MemberCallback | None = None
    member_removed: MemberCallback | None = None
    fire_for_existing: bool = False

    def __post_init__(self) -> None:
        _check_callback("member_added", self.member_added)
        _check_callback("member_removed", self.member_removed)
        if not isinstance(self.fire_for_existing, bool):
            raise TypeError(f"fire_for_existing must be a bool, not {self.fire_for_existing!r}")


class AddLifecycleListener(msgspec.Struct, frozen=True):
    """Hazelcast-style lifecycle listener: ``on_change(state)`` with each ``LifecycleState`` a
    client goes through. Replies the id (``RemoveListener`` removes it)."""

    on_change: Callable[[LifecycleState], object]

    def __post_init__(self) -> None:
        if not callable(self.on_change):
            raise TypeError(f"on_change must be callable, not {type(self.on_change).__name__}")


class RemoveListener(msgspec.Struct, frozen=True):
    """Remove a registration by id. Replies True the first time, then False."""

    registration_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.registration_id, str):
            raise TypeError(
                f"registration_id must be a str, not {type(self.registration_id).__name__}"
            )


class GetMembers(msgspec.Struct, frozen=True):
    """Ask the listener registry for the up members (age order), filtered by ``selector``.
    Replies ``tuple[Member, ...]``. The registry holds the published member list, so it is the one
    actor that answers: the others ignore it, as any message they do not handle.

    ``selector`` is a ``MemberFilter`` (a value) or None, never a function: select with your own
    function in your own thread, ``select_members(reply, selector)``.
    """

    selector: MemberFilter | None = None

    def __post_init__(self) -> None:
        check_member_filter(self.selector)


class GetClusterState(msgspec.Struct, frozen=True):
    """Ask for the current ``CurrentClusterState``."""


class GetHealth(msgspec.Struct, frozen=True):
    """Ask a membership actor how its member is doing; it replies a ``HealthReport``."""


class HealthReport(msgspec.Struct, frozen=True):
    """A member's view and health at one moment: its published ``state``; ``joined`` (and not
    out yet); ``converged``: every member that must has seen its state's version; ``phi``: the
    suspicion level of each member it monitors by heartbeats (uuid -> phi; its detector has
    no heartbeat yet: absent); ``local_health``: its Lifeguard score (0: healthy)."""

    state: CurrentClusterState
    joined: bool
    converged: bool
    phi: dict[str, float]
    local_health: int


class GetConnection(msgspec.Struct, frozen=True):
    """Ask a client actor for the address of the member it is connected to (None when it is
    not connected)."""


class NextMember(msgspec.Struct, frozen=True):
    """Ask the load balancer for the next member (or None) accepted by ``selector``, a
    ``MemberFilter`` or None.

    With ``among``, it chooses among those members only (the ones of them still up): a selection
    the caller made in its own thread, e.g. ``select_members(registry.ask(GetMembers()), f)``,
    since no function of the caller's runs in the load balancer.
    """

    selector: MemberFilter | None = None
    among: tuple[Member, ...] | None = None

    def __post_init__(self) -> None:
        check_member_filter(self.selector)
        among = self.among
        if among is not None and not (
            isinstance(among, tuple) and all(isinstance(member, Member) for member in among)
        ):
            raise TypeError(f"among must be a tuple of Member or None, not {reprlib.repr(among)}")


class Listen(msgspec.Struct, frozen=True):
    """Node -> transport, once the actors it serves are running: deliver what the links bring to
    ``deliver_to`` (the ordering actor) and start accepting on the listener, if there is one.

    Nothing comes in before it: the listener is not accepted from, and nobody has been dialled.
    ``peer_news`` (the membership actor, if any) is told ``PeerGone`` when the link to a member
    is ended by the peer or a dial to one is refused.
    """

    deliver_to: pykka.ActorRef[Any]
    peer_news: pykka.ActorRef[Any] | None = None

    def __post_init__(self) -> None:
        _check_actor("deliver_to", self.deliver_to)
        if self.peer_news is not None:
            _check_actor("peer_news", self.peer_news)


class GetEvents(msgspec.Struct, frozen=True):
    """Ask an event recorder for every event it has received, in order."""


class WatchEvents(msgspec.Struct, frozen=True):
    """Ask an event recorder for every event it has received, in order, and to tell ``watcher`` (a
    pykka ActorRef) each later one, until ``UnwatchEvents``: none missed, none twice."""

    watcher: pykka.ActorRef[Any]

    def __post_init__(self) -> None:
        _check_actor("watcher", self.watcher)


class UnwatchEvents(msgspec.Struct, frozen=True):
    """Tell an event recorder to stop telling ``watcher`` its events."""

    watcher: pykka.ActorRef[Any]

    def __post_init__(self) -> None:
        _check_actor("watcher", self.watcher)


class CallbackCall(NamedTuple):
    """One call to make: ``callback(argument)`` on behalf of listener ``registration_id``."""

    registration_id: str
    callback: Callable[[Any], object]  # takes ``argument``: a MemberCallback or an on_change
    argument: Member | LifecycleState


class RunCallbacks(msgspec.Struct, frozen=True):
    """Listener registry -> callback runner: the calls of one change, to run in order.

    Asked, it is answered once they have run, and so have all the calls told to the runner
    before it: ``RunCallbacks(())`` asked is a barrier (the runner runs one message at a time).
    """

    calls: tuple[CallbackCall, ...]
