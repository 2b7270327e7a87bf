"""``ClusterService``: the Hazelcast-style, thread-safe facade over the listener registry."""

from __future__ import annotations

import enum
import threading
import uuid as uuid_module
from typing import Any

import pykka

from messages.address import Address
from messages.commands import (
    AddCallbackListener,
    GetMembers,
    MemberCallback,
    RemoveListener,
)
from messages.member import Member, SelectorLike, as_predicate


class _Phase(enum.Enum):
    CREATED = "created"
    STARTED = "started"
    SHUT_DOWN = "shut down"


class ClusterService:
    """Members and membership listeners, callable from any thread (Hazelcast Python client 3.x names).

    Every call asks the listener registry actor ``listeners`` and waits at most ``ask_timeout``
    seconds. Member selectors run in the caller's thread, never in an actor.
    """

    def __init__(self, listeners: pykka.ActorRef[Any], ask_timeout: float = 10.0) -> None:
        if not isinstance(listeners, pykka.ActorRef):
            raise TypeError(f"listeners must be a pykka ActorRef, not {type(listeners).__name__}")
        if ask_timeout <= 0:
            raise ValueError(f"ask_timeout must be positive, not {ask_timeout!r}")
        self._listeners = listeners
        self._ask_timeout = ask_timeout
        self._lock = threading.Lock()
        self._phase = _Phase.CREATED
        self._owned_actors: list[pykka.ActorRef[Any]] = []

    def start(self) -> None:
        """Make the service usable; a no-op when already started."""
        with self._lock:
            if self._phase is _Phase.SHUT_DOWN:
                raise RuntimeError("ClusterService is shut down and cannot be started again")
            if not self._listeners.is_alive():
                raise RuntimeError(f"Listener registry {self._listeners} is not running")
            self._phase = _Phase.STARTED

    def shutdown(self) -> None:
        """Stop the actors started for this service (load balancers); later calls raise."""
        with self._lock:
            self._phase = _Phase.SHUT_DOWN
            owned, self._owned_actors = self._owned_actors, []
        for actor in owned:
            actor.stop()

    @property
    def listeners(self) -> pykka.ActorRef[Any]:
        """The listener registry actor (for load balancers and actor subscribers)."""
        self._check_started()
        return self._listeners

    @property
    def ask_timeout(self) -> float:
        return self._ask_timeout

    def stop_on_shutdown(self, actor: pykka.ActorRef[Any]) -> None:
        """Stop ``actor`` when this service shuts down (or now, raising, if it already has)."""
        with self._lock:
            if self._phase is _Phase.STARTED:
                self._owned_actors.append(actor)
                return
        actor.stop()
        self._check_started()

    def add_listener(
        self,
        member_added: MemberCallback | None = None,
        member_removed: MemberCallback | None = None,
        fire_for_existing: bool = False,
    ) -> str:
        """Call ``member_added(member)`` on each MemberUp and ``member_removed(member)`` on each
        removal of an added member; with ``fire_for_existing``, first call ``member_added`` for
        each current member. Returns the registration id for ``remove_listener``.
        """
        registration_id: str = self._ask(
            AddCallbackListener(member_added, member_removed, fire_for_existing)
        )
        return registration_id

    def remove_listener(self, registration_id: str) -> bool:
        """Remove a listener (of either kind): True the first time, then False."""
        if not isinstance(registration_id, str):
            raise TypeError(f"registration_id must be a str, not {type(registration_id).__name__}")
        removed: bool = self._ask(RemoveListener(registration_id))
        return removed

    def size(self) -> int:
        """The number of members (``len(get_members())``)."""
        return len(self.get_members())

    @property
    def members(self) -> tuple[Member, ...]:
        """The members, oldest first."""
        return self.get_members()

    def get_member_list(self) -> tuple[Member, ...]:
        """The members, oldest first."""
        return self.get_members()

    def get_members(self, selector: SelectorLike = None) -> tuple[Member, ...]:
        """The members that have been added and not yet removed, oldest first, that ``selector``
        (a MemberSelector, a callable or None for all) accepts.
        """
        predicate = as_predicate(selector)
        members: tuple[Member, ...] = self._ask(GetMembers())
        if predicate is None:
            return members
        return tuple(member for member in members if predicate(member))

    def get_member_by_uuid(self, uuid: str | uuid_module.UUID) -> Member | None:
        """The member with this uuid, or None."""
        if isinstance(uuid, uuid_module.UUID):
            uuid = str(uuid)
        elif not isinstance(uuid, str):
            raise TypeError(f"uuid must be a str or uuid.UUID, not {type(uuid).__name__}")
        return next((m for m in self.get_members() if m.uuid == uuid), None)

    def get_member_by_address(self, address: Address | str) -> Member | None:
        """The oldest member at this address (``Address`` or ``"host:port"``), or None."""
        wanted = Address.parse(address)
        return next((m for m in self.get_members() if m.address == wanted), None)

    def _check_started(self) -> None:
        phase = self._phase
        if phase is not _Phase.STARTED:
            hint = "" if phase is _Phase.SHUT_DOWN else "; call start() first"
            raise RuntimeError(f"ClusterService is {phase.value}{hint}")

    def _ask(self, message: object) -> Any:
        self._check_started()
        try:
            return self._listeners.ask(message, timeout=self._ask_timeout)
        except pykka.ActorDeadError:
            raise RuntimeError(f"Listener registry {self._listeners} is not running") from None
        except pykka.Timeout:
            raise TimeoutError(
                f"Listener registry did not answer within {self._ask_timeout} s"
            ) from None
