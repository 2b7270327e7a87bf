"""NodeView: what the management server may ask of a node, each ask bounded by a timeout."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pykka

from actors.transport.traffic import Traffic
from messages.address import Address
from messages.events import CurrentClusterState
from messages.local.commands import GetHealth, HealthReport
from messages.membership.effects import DownMember, LeaveMember

__all__ = ["NodeView", "Unavailable"]


class Unavailable(Exception):
    """The node's membership actor did not answer within the timeout, or has stopped."""


@dataclasses.dataclass(frozen=True)
class NodeView:
    """One member as the management server and its metrics see it.

    The HTTP thread never touches an actor's state: it asks the membership actor by its public
    messages, each ask bounded by ``timeout`` (``Unavailable`` when it is not answered), and
    reads the thread-safe counters the I/O thread keeps (``traffic``, ``link_count``).
    """

    address: Address
    uuid: str
    membership: pykka.ActorRef[Any]
    traffic: Traffic
    link_count: Callable[[], int]
    timeout: float

    def health(self) -> HealthReport:
        report: HealthReport = self._ask(GetHealth())
        return report

    def command(self, command: LeaveMember | DownMember) -> CurrentClusterState:
        """Carry out an operator's command; the member's state after it."""
        state: CurrentClusterState = self._ask(command)
        return state

    def _ask(self, message: object) -> Any:
        try:
            return self.membership.ask(message, timeout=self.timeout)
        except pykka.Timeout as error:
            raise Unavailable(f"the member did not answer within {self.timeout:g} s") from error
        except pykka.ActorDeadError as error:
            raise Unavailable("the member has stopped") from error
