"""ActorThreadHook: a message that runs a test's function in the thread of the actor told it.

A test crashes the membership actor (to see the node stop and say why) or blocks it (a paused
process) by making it run a function of the test's in its own turn. No actor of a node runs a
caller's function from any message it handles, so the hook rides on what every actor does with
every message: ask its type. ``isinstance`` reads ``__class__`` of an object whose type is not
the class asked about, and the hook's ``__class__`` is a property that runs ``on_type_asked``.
pykka asks first (is it a stop or a proxy call?), outside ``on_receive``: what the function
raises is an actor failure (``on_failure``, the actor stops), and a function that waits keeps
the actor's thread in that turn. The function may run more than once (once per type asked).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ActorThreadHook"]


class ActorThreadHook:
    """Test-only: ``actor.tell(ActorThreadHook(fn))`` runs ``fn()`` in the actor's thread."""

    def __init__(self, on_type_asked: Callable[[], object]) -> None:
        self._on_type_asked = on_type_asked

    @property  # type: ignore[misc]  # instead of the class attribute: reading it runs the hook
    def __class__(self) -> type:
        self._on_type_asked()
        return ActorThreadHook
