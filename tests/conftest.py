"""Shared fixtures: stop the actors a test started, an in-process cluster, build members, feed
membership changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from cluster_helpers import ClusterHarness

from actors.listeners.callbacks import CallbackRunner
from actors.listeners.registry import ListenerRegistryActor
from messages.address import Address
from messages.events import ClusterEvent, CurrentClusterState, MemberRemoved, MemberUp
from messages.local.commands import GetClusterState, GetMembers
from messages.member import DataMemberSelector, Member, MemberStatus
from messages.membership.effects import MembershipChanged

MakeMember = Callable[..., Member]


@pytest.fixture
def harness() -> Iterator[ClusterHarness]:
    """In-process members with the fast test timings (``ClusterHarness``), all stopped after."""
    with ClusterHarness() as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def _stop_started_actors() -> Iterator[None]:
    """Stop every actor that the test started and left running."""
    before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    yield
    for ref in pykka.ActorRegistry.get_all():
        if ref.actor_urn not in before:
            ref.stop()


def build_member(
    port: int,
    *,
    up_number: int = 0,
    status: MemberStatus | None = None,
    lite: bool = False,
    host: str = "127.0.0.1",
) -> Member:
    """A member at ``host:port``.

    UP when ``up_number`` > 0, JOINING otherwise, unless ``status``.
    """
    if status is None:
        status = MemberStatus.UP if up_number > 0 else MemberStatus.JOINING
    return Member(
        uuid=f"00000000-0000-4000-8000-{port:012d}",
        address=Address(host, port),
        status=status,
        up_number=up_number,
        lite_member=lite,
    )


@pytest.fixture
def make_member() -> MakeMember:
    """``make_member(port, up_number=0, status=None, lite=False)``: a member with a fixed uuid."""
    return build_member


class MembershipFeed:
    """Stands in for the membership actor: tells a registry ``MembershipChanged`` messages.

    Keeps the members (age order) and the version; each call is one state change. Use from one
    thread at a time.
    """

    def __init__(self, registry: pykka.ActorRef[Any]) -> None:
        self.registry = registry
        self.version = 0
        self.members: tuple[Member, ...] = ()
        self._next_up_number = 1

    def up(self, member: Member) -> Member:
        """Move ``member`` (new or JOINING) to UP with the next up_number; emits MemberUp."""
        up = member.with_status(MemberStatus.UP, up_number=self._next_up_number)
        self._next_up_number += 1
        others = tuple(m for m in self.members if m.uuid != member.uuid)
        self.change((MemberUp(version=self.version + 1, member=up),), (*others, up))
        return up

    def remove(self, member: Member) -> None:
        """Remove ``member``; emits MemberRemoved with the member as REMOVED."""
        current = next(m for m in self.members if m.uuid == member.uuid)
        removed = MemberRemoved(
            version=self.version + 1,
            member=current.with_status(MemberStatus.REMOVED),
            previous_status=current.status,
        )
        self.change((removed,), tuple(m for m in self.members if m.uuid != member.uuid))

    def change(self, events: tuple[ClusterEvent, ...], members: tuple[Member, ...]) -> None:
        """One state change with the given events and members (kept in the given order)."""
        self.version += 1
        self.members = members
        state = CurrentClusterState(version=self.version, members=members)
        self.registry.tell(MembershipChanged(events=events, state=state))

    def sync(self) -> CurrentClusterState:
        """Wait until the registry has handled (and fanned out) every change told so far."""
        state: CurrentClusterState = self.registry.ask(GetClusterState(), timeout=10)
        return state


class UncheckedGetMembers(GetMembers, frozen=True):
    """Test-only: a ``GetMembers`` whose selector may be any function. It skips the check that
    keeps a caller's functions out of actors, so that a test can see that the registry, which
    answers ``GetMembers``, refuses such a selector rather than run it."""

    def __post_init__(self) -> None:
        pass


def raising_selector(member: Member) -> bool:
    """A selector function that raises: no actor may run it."""
    raise ZeroDivisionError(f"selector failed on {member.address}")


class DataButRaising(DataMemberSelector, frozen=True):
    """A subclass of a value selector whose ``select`` is code of its own."""

    def select(self, member: Member) -> bool:
        return raising_selector(member)


@pytest.fixture
def callback_runner() -> pykka.ActorRef[Any]:
    return CallbackRunner.start()


@pytest.fixture
def registry(callback_runner: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
    """A listener registry with its callback runner (both stopped after the test)."""
    return ListenerRegistryActor.start(callback_runner)


@pytest.fixture
def feed(registry: pykka.ActorRef[Any]) -> MembershipFeed:
    return MembershipFeed(registry)
