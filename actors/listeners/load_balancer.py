"""The load balancer actor, which keeps the up members, and the Hazelcast-style facades."""

from __future__ import annotations

import bisect
import logging
import random
from typing import TYPE_CHECKING, Any

import pykka

from actors.dispatch.actor import DispatchedActor
from actors.messaging.futures import ask
from messages.address import Address
from messages.events import CurrentClusterState, MemberRemoved, MemberUp
from messages.local.commands import (
    InitialState,
    NextMember,
    Subscribe,
    Unsubscribe,
)
from messages.member import Member, filter_members
from messages.messaging.balancing import LoadBalancingStrategy, RandomStrategy, RoundRobinStrategy
from messages.settings import Settings

if TYPE_CHECKING:
    from actors.listeners.cluster_service import ClusterService

__all__ = [
    "LoadBalancerActor",
    "RandomLoadBalancer",
    "RoundRobinLoadBalancer",
]

logger = logging.getLogger(__name__)


def _age(member: Member) -> tuple[int, Address, str]:
    return (member.up_number, member.address, member.uuid)


class LoadBalancerActor(DispatchedActor):
    """Keeps the up members (age order) and answers ``NextMember`` with ``strategy``.

    ``start`` subscribes it to ``registry`` with the registry's snapshot, by an ``ask`` (within
    ``ask_timeout``) made in the starting thread, never in the actor (which may share a dispatcher
    thread with the registry): the snapshot is in its mailbox before anything told to it after
    ``start`` returns, so its members are current before it handles a caller's first message.
    Callers are serialised by the actor, so a round robin rotates exactly even with concurrent
    callers. It runs no caller's function: a caller that selects with its own passes the result as
    ``among``.
    """

    def __init__(self, registry: pykka.ActorRef[Any], strategy: LoadBalancingStrategy) -> None:
        super().__init__()
        self._registry = registry
        self._strategy = strategy
        self._members: tuple[Member, ...] = ()

    @classmethod
    def start(
        cls,
        registry: pykka.ActorRef[Any],
        strategy: LoadBalancingStrategy,
        ask_timeout: float = Settings.lan().ask_timeout,
    ) -> pykka.ActorRef[LoadBalancerActor]:
        """Start one, subscribed to ``registry`` (see the class docstring); if the registry does
        not take the subscription, the balancer is stopped (the log says why)."""
        ref = super().start(registry, strategy)
        subscribe = Subscribe(
            ref, events=(MemberUp, MemberRemoved), initial_state=InitialState.SNAPSHOT
        )
        try:
            registry.ask(subscribe, timeout=ask_timeout)
        except (pykka.ActorDeadError, pykka.Timeout) as error:
            logger.error("The load balancer cannot subscribe to the registry (%r); stopped", error)
            ref.stop(block=False)
        return ref

    def on_stop(self) -> None:
        try:
            self._registry.tell(Unsubscribe(self.actor_ref))
        except pykka.ActorDeadError:
            logger.debug("Listener registry already stopped; nothing to unsubscribe from")

    def on_receive(self, message: Any) -> Any:
        match message:
            case NextMember(selector=selector, among=among):
                return self._strategy.next(filter_members(self._still_up(among), selector))
            case CurrentClusterState(up_members=up_members):
                self._members = up_members  # the snapshot its subscription starts with
            case MemberUp(member=member):
                members = [m for m in self._members if m.uuid != member.uuid]
                bisect.insort(members, member, key=_age)
                self._members = tuple(members)
            case MemberRemoved(member=member):
                self._members = tuple(m for m in self._members if m.uuid != member.uuid)
            case _:
                return super().on_receive(message)
        return None

    def _still_up(self, among: tuple[Member, ...] | None) -> tuple[Member, ...]:
        """The up members, or those of ``among`` that are still up (in ``among``'s order)."""
        if among is None:
            return self._members
        up = {member.uuid for member in self._members}
        return tuple(member for member in among if member.uuid in up)


class _LoadBalancer:
    """A facade over a LoadBalancerActor of its own, subscribed to the service's registry."""

    def __init__(self, cluster_service: ClusterService, strategy: LoadBalancingStrategy) -> None:
        registry = cluster_service.listeners
        self._ask_timeout = cluster_service.ask_timeout
        self._actor = LoadBalancerActor.start(registry, strategy, self._ask_timeout)
        cluster_service.stop_on_shutdown(self._actor)

    def next(self) -> Member | None:
        """The next member, or None when there is no up member."""
        member: Member | None = self._ask(NextMember())
        return member

    def next_address(self) -> Address | None:
        """The address of the next member, or None when there is no up member."""
        member = self.next()
        return None if member is None else member.address

    def shutdown(self) -> None:
        """Stop the load balancer; ``next()`` then raises RuntimeError."""
        self._actor.stop()

    def _ask(self, message: NextMember) -> Any:
        name = f"{type(self).__name__} (shut down, or its start failed: see the log)"
        return ask(self._actor, message, self._ask_timeout, name)


class RandomLoadBalancer(_LoadBalancer):
    """Picks a random up member (Hazelcast's ``RandomLB``)."""

    def __init__(self, cluster_service: ClusterService) -> None:
        super().__init__(cluster_service, RandomStrategy(random.Random()))


class RoundRobinLoadBalancer(_LoadBalancer):
    """Takes the up members in turn (Hazelcast's ``RoundRobinLB``)."""

    def __init__(self, cluster_service: ClusterService) -> None:
        super().__init__(cluster_service, RoundRobinStrategy.starting_anywhere(random.Random()))
