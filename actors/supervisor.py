"""NodeSupervisor: where a node's actors report, by message, that it joined, failed, or is out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

from actors.dispatch.actor import DispatchedActor
from actors.messaging.futures import fail, settle
from messages.membership.effects import Joined, JoinFailed, Termination, TerminationKind

__all__ = ["JoinRefusedError", "JoinTimeoutError", "NodeSupervisor"]

logger = logging.getLogger(__name__)


class JoinRefusedError(RuntimeError):
    """The cluster refused this member (cluster name or protocol mismatch, failed authentication,
    removed incarnation)."""


class JoinTimeoutError(TimeoutError):
    """No seed answered within ``join_timeout``."""


class NodeSupervisor(DispatchedActor):
    """Receives ``Joined``/``JoinFailed`` (settling ``joined``, which the starting node waits on)
    and ``Termination`` from the node's actors: the first one (the member is out of the cluster,
    gave up leaving, or an actor crashed) stops the node with ``stop_node``, in a thread of its
    own: stopping waits for the node's actors, which share this actor's thread (the I/O thread)."""

    def __init__(
        self, joined: pykka.Future[None], stop_node: Callable[[Termination], None]
    ) -> None:
        super().__init__()
        self._joined = joined
        self._stop_node = stop_node
        self._terminated = False

    def on_receive(self, message: Any) -> Any:
        match message:
            case Joined():
                settle(self._joined, None)
            case JoinFailed(reason=reason, refused=refused):
                error_type = JoinRefusedError if refused else JoinTimeoutError
                fail(self._joined, error_type(reason))
            case Termination(kind=kind, reason=reason) if not self._terminated:
                self._terminated = True
                fail(self._joined, RuntimeError(f"the node stopped while joining: {reason}"))
                if kind is not TerminationKind.STOPPED:  # else stop() or a leave given up
                    logger.info("Node stops: %s", reason)
                threading.Thread(  # a no-op when it is stop()'s own report
                    target=self._stop_node, args=(message,), name="node-stop", daemon=True
                ).start()
            case Termination():
                pass  # the node is stopping already
            case _:
                logger.warning("NodeSupervisor ignores unexpected message %r", message)
        return None
