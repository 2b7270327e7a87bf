"""The thespian actor of ``remote.py``'s baseline column: in a module of its own, so thespian's
actor processes can import it."""

from __future__ import annotations

from typing import Any

from thespian.actors import Actor


class Echo(Actor):  # type: ignore[misc]
    """Sends every message back to its sender."""

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, int):
            self.send(sender, message)
