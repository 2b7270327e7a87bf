"""``ClusterService``: the Hazelcast-style, thread-safe facade over the listener registry."""

from __future__ import annotations

import enum
import threading
import uuid as uuid_module
from typing import Any

import pykka

from actors.listeners.callbacks import in_callback
from actors.messaging.futures import ask
from messages.address import Address
from messages.local.commands import (
    AddCallbackListener,
    GetMembers,
    MemberCallback,
    RemoveListener,
    RunCallbacks,
)
from messages.member import Member, SelectorLike, as_predicate
from messages.settings import Settings

__all__ = [
    "ClusterService",
]


class _Phase(enum.Enum):
    CREATED = "created"
    STARTED = "started"
    SHUT_DOWN = "shut down"


class ClusterService:
    """Members and membership listeners, callable from any thread.

    Names as in the Hazelcast Python client 3.x. Every call asks the listener registry actor
    ``listeners`` and waits at most ``ask_timeout`` seconds; ``callbacks``, the callback runner that
    registry hands listener calls to, is asked only to wait for them (``fire_for_existing``). Member
    selectors run in the caller's thread, never in an actor: one that raises raises in the caller,
    one that hangs hangs only the caller.
    """

    def __init__(
        self,
        listeners: pykka.ActorRef[Any],
        callbacks: pykka.ActorRef[Any],
        ask_timeout: float = Settings.lan().ask_timeout,
    ) -> None:
        for name, ref in (("listeners", listeners), ("callbacks", callbacks)):
            if not isinstance(ref, pykka.ActorRef):
                raise TypeError(f"{name} must be a pykka ActorRef, not {type(ref).__name__}")
        if ask_timeout <= 0:
            raise ValueError(f"ask_timeout must be positive, not {ask_timeout!r}")
        self._listeners = listeners
        self._callbacks = callbacks
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
        removal of an added member. Returns the registration id for ``remove_listener``.

        With ``fire_for_existing``, ``member_added`` has been called for each current member,
        oldest first, when this returns (as in Hazelcast), and every later change reaches the
        listener after those calls, none missed, none twice. Listeners run on the callback runner's
        thread. Called from inside a listener, where waiting for that thread would wait forever,
        it returns at once: the calls for the current members then run right after the listener
        batch in progress, still before any later change.
        """
        registration_id: str = self.ask_registry(
            AddCallbackListener(member_added, member_removed, fire_for_existing)
        )
        if fire_for_existing and member_added is not None and not in_callback():
            self._wait_for_callbacks(registration_id)
        return registration_id

    def _wait_for_callbacks(self, registration_id: str) -> None:
        """Wait until the runner has run every call queued so far: the registry queued those for
        the existing members before it replied to ``AddCallbackListener``, and the runner runs one
        message at a time, so its answer to an empty ``RunCallbacks`` comes after them."""
        try:
            self._callbacks.ask(RunCallbacks(()), timeout=self._ask_timeout)
        except pykka.ActorDeadError:
            pass  # no listener call will run (the registry logs those it cannot hand over)
        except pykka.Timeout:
            raise TimeoutError(
                f"member_added did not finish for the existing members within "
                f"{self._ask_timeout} s (registration {registration_id} stays in place)"
            ) from None

    def remove_listener(self, registration_id: str) -> bool:
        """Remove a listener (of either kind): True the first time, then False."""
        if not isinstance(registration_id, str):
            raise TypeError(f"registration_id must be a str, not {type(registration_id).__name__}")
        removed: bool = self.ask_registry(RemoveListener(registration_id))
        return removed

    def size(self) -> int:
        """The number of members (``len(get_members())``)."""
        return len(self.get_members())

    @property
    def members(self) -> list[Member]:
        """The members, oldest first (a new list)."""
        return self.get_members()

    def get_member_list(self) -> list[Member]:
        """The members, oldest first (a new list)."""
        return self.get_members()

    def get_members(self, selector: SelectorLike = None) -> list[Member]:
        """The members that have been added and not yet removed, oldest first, that ``selector``
        (a MemberSelector, a callable or None for all) accepts, as a new list.
        """
        predicate = as_predicate(selector)
        members: tuple[Member, ...] = self.ask_registry(GetMembers())
        return [member for member in members if predicate is None or predicate(member)]

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

    def ask_registry(self, message: object) -> Any:
        """Ask the listener registry (for facades that share this service's registry)."""
        self._check_started()
        return ask(self._listeners, message, self._ask_timeout, "the listener registry")
