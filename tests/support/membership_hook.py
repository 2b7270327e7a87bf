"""ReadHookedAttachTransport: a message that runs a test's function inside the membership actor.

A test crashes the membership actor (to see the node stop and say why) or blocks it (a paused
process) by making it run a function of the test's in its own turn. The membership actor runs no
caller's function in any message it handles, so the hook is a test-only subclass of a message it
does handle, ``AttachTransport``: its ``transport`` field is a property that first calls the hook.
The actor reads that field in ``on_receive`` itself, outside its guarded protocol step, so what the
hook raises stops the actor, and a hook that waits keeps the actor's thread in that turn. The node
sends ``AttachTransport`` once, on start; the hook's message re-attaches that same transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from messages.local.commands import AttachTransport

__all__ = ["ReadHookedAttachTransport"]


class ReadHookedAttachTransport(AttachTransport, frozen=True):
    """Test-only: an ``AttachTransport`` whose ``transport``, when read, calls ``on_read`` first.

    ``ReadHookedAttachTransport(node.transport, on_read)``: told to a node's membership actor, it
    makes the actor call ``on_read()`` in its own thread, then attach ``node.transport`` again.
    """

    on_read: Callable[[], object]

    def __post_init__(self) -> None:
        AttachTransport(self._field())  # the inherited check, without running the hook

    @property  # type: ignore[misc]  # shadows the inherited field: reading it runs the hook
    def transport(self) -> pykka.ActorRef[Any]:
        self.on_read()
        return self._field()

    def _field(self) -> pykka.ActorRef[Any]:
        transport: pykka.ActorRef[Any] = _TRANSPORT_FIELD.__get__(self)
        return transport


_TRANSPORT_FIELD = AttachTransport.__dict__["transport"]
"""The slot of the inherited field, which the property shadows."""
