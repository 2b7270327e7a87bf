"""The listener registry: membership registrations and the fan-out of membership events."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pykka

from actors.dispatch.actor import DispatchedActor
from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    LifecycleEvent,
    LifecycleState,
    MemberRemoved,
    MemberUp,
)
from messages.local.commands import (
    AddCallbackListener,
    AddLifecycleListener,
    CallbackCall,
    GetClusterState,
    GetMembers,
    InitialState,
    MemberCallback,
    RemoveListener,
    RunCallbacks,
    Subscribe,
    Unsubscribe,
)
from messages.member import filter_members
from messages.membership.effects import MembershipChanged
from messages.membership.replay import replay_events

__all__ = [
    "ListenerRegistryActor",
]

logger = logging.getLogger(__name__)


class _Subscription(NamedTuple):
    subscriber: pykka.ActorRef[Any]
    events: tuple[type[ClusterEvent], ...]


class _CallbackListener(NamedTuple):
    member_added: MemberCallback | None
    member_removed: MemberCallback | None


class ListenerRegistryActor(DispatchedActor):
    """Owns the registrations and the latest membership snapshot; fans out each change.

    Subscriber actors get each event they subscribed to by ``tell``; callback listeners get their
    calls through ``callback_runner``, one batch per change. Because registration, the initial state
    and the fan-out all happen in this actor's message handling, a new registration sees every
    change exactly once: either in its initial state or as a live event. A client's connection
    changes (``LifecycleEvent``) travel the same way; the latest one is part of the initial state.
    This actor never asks another actor, so anyone may ask it, callbacks included. Nor does it run
    anyone's function: listener functions run on the callback runner, and the selector of a
    ``GetMembers`` is a ``MemberFilter`` value, so nothing told to it can make it raise or hang.
    ``on_fanout``, if given, is called with each change's fan-out latency in seconds: from its
    ``published_at`` until every listener has been told (a cheap, thread-safe recorder: a
    Prometheus histogram's ``observe``).
    """

    def __init__(
        self,
        callback_runner: pykka.ActorRef[Any],
        on_fanout: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self._callback_runner = callback_runner
        self._on_fanout = on_fanout
        self._state = CurrentClusterState(version=0)
        self._lifecycle: LifecycleEvent | None = None
        self._subscriptions: dict[str, _Subscription] = {}
        self._callback_listeners: dict[str, _CallbackListener] = {}
        self._lifecycle_listeners: dict[str, Callable[[LifecycleState], object]] = {}

    def on_receive(self, message: Any) -> Any:
        match message:
            case MembershipChanged():
                self._on_membership_changed(message)
                return None
            case Subscribe():
                return self._subscribe(message)
            case Unsubscribe(subscriber=subscriber):
                return self._unsubscribe(subscriber)
            case AddCallbackListener():
                return self._add_callback_listener(message)
            case AddLifecycleListener(on_change=on_change):
                registration_id = str(uuid.uuid4())
                self._lifecycle_listeners[registration_id] = on_change
                return registration_id
            case RemoveListener(registration_id=registration_id):
                return self._remove_listener(registration_id)
            case GetMembers(selector=selector):
                return filter_members(self._state.up_members, selector)
            case GetClusterState():
                return self._state
            case _:
                return super().on_receive(message)

    def _on_membership_changed(self, change: MembershipChanged) -> None:
        self._state = change.state
        events = change.events
        for event in events:
            if isinstance(event, LifecycleEvent):
                self._lifecycle = event
        dead: list[str] = []
        for registration_id, (subscriber, event_types) in self._subscriptions.items():
            try:
                for event in events:
                    if isinstance(event, event_types):
                        subscriber.tell(event)
            except pykka.ActorDeadError:
                dead.append(registration_id)
        for registration_id in dead:
            subscriber = self._subscriptions.pop(registration_id).subscriber
            logger.info("Dropped listener %s: subscriber %s is dead", registration_id, subscriber)
        if self._callback_listeners or self._lifecycle_listeners:
            calls = tuple(self._callback_calls(events))
            if calls:
                self._run_callbacks(calls)
        if self._on_fanout is not None and change.published_at is not None:
            self._on_fanout(time.monotonic() - change.published_at)

    def _run_callbacks(self, calls: tuple[CallbackCall, ...]) -> None:
        try:
            self._callback_runner.tell(RunCallbacks(calls))
        except pykka.ActorDeadError:
            logger.error("Callback runner is dead: %d listener calls not made", len(calls))

    def _callback_calls(self, events: tuple[ClusterEvent, ...]) -> Iterator[CallbackCall]:
        for event in events:
            if isinstance(event, MemberUp):
                for registration_id, listener in self._callback_listeners.items():
                    if listener.member_added is not None:
                        yield CallbackCall(registration_id, listener.member_added, event.member)
            elif isinstance(event, MemberRemoved) and event.member.up_number > 0:
                for registration_id, listener in self._callback_listeners.items():
                    if listener.member_removed is not None:
                        yield CallbackCall(registration_id, listener.member_removed, event.member)
            elif isinstance(event, LifecycleEvent):
                for registration_id, on_change in self._lifecycle_listeners.items():
                    yield CallbackCall(registration_id, on_change, event.state)

    def _subscribe(self, subscribe: Subscribe) -> str:
        """Send the initial state and register; a subscriber already dead is not registered
        (its id is still returned, as for one that dies later and is dropped)."""
        subscriber = subscribe.subscriber
        registration_id = str(uuid.uuid4())
        try:
            match subscribe.initial_state:
                case InitialState.EVENTS:
                    lifecycle = () if self._lifecycle is None else (self._lifecycle,)
                    for event in (*replay_events(self._state), *lifecycle):
                        if isinstance(event, subscribe.events):
                            subscriber.tell(event)
                case InitialState.SNAPSHOT:
                    subscriber.tell(self._state)
                case InitialState.NONE:
                    pass
        except pykka.ActorDeadError:
            logger.info("Dropped listener %s: subscriber %s is dead", registration_id, subscriber)
            return registration_id
        self._subscriptions[registration_id] = _Subscription(subscriber, subscribe.events)
        return registration_id

    def _unsubscribe(self, subscriber: pykka.ActorRef[Any]) -> bool:
        registration_ids = [
            registration_id
            for registration_id, subscription in self._subscriptions.items()
            if subscription.subscriber.actor_urn == subscriber.actor_urn
        ]
        for registration_id in registration_ids:
            del self._subscriptions[registration_id]
        return bool(registration_ids)

    def _add_callback_listener(self, add: AddCallbackListener) -> str:
        """Register; with ``fire_for_existing``, tell the runner the calls for the current members
        first, in this same turn, so that they are queued there before the reply (the facade's
        barrier after the reply waits for them) and before any later change."""
        registration_id = str(uuid.uuid4())
        if add.fire_for_existing and add.member_added is not None:
            calls = tuple(
                CallbackCall(registration_id, add.member_added, member)
                for member in self._state.up_members
            )
            if calls:
                self._run_callbacks(calls)
        self._callback_listeners[registration_id] = _CallbackListener(
            add.member_added, add.member_removed
        )
        return registration_id

    def _remove_listener(self, registration_id: str) -> bool:
        return any(
            registrations.pop(registration_id, None) is not None
            for registrations in (
                self._subscriptions,
                self._callback_listeners,
                self._lifecycle_listeners,
            )
        )
