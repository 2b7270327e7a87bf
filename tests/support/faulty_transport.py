"""FaultyTransport: the node's transport actor with network faults a test can inject.

A test double in the manner of hashicorp/memberlist's ``MockTransport``: the node is built with it
(``Node(..., transport=FaultyTransport)``, as ``ClusterHarness`` does) and it behaves as the real
``TransportActor`` until a test tells it ``BlockPeers`` or ``DelayPeers``. Every message a node
sends to a member by address passes the transport (``SendTo``), or is written straight to a link
the transport offers (``shared_routes``), which it stops offering for the members a fault applies
to, so that is where the faults are applied; production code holds no fault-injection state or
messages.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.transport.actor import TransportActor
from actors.transport.loop import IoLoop, notify_sent
from messages.address import Address
from messages.membership.effects import SendTo

__all__ = ["BlockPeers", "DelayPeers", "FaultyTransport"]


class BlockPeers(msgspec.Struct, frozen=True):
    """Drop every send to these addresses (an empty set lifts the block).

    Like packets lost in a network partition, not like a refused connection: a link that loses a
    frame this way stays stalled, even after the block is lifted, until it is closed or replaced
    (so a test sees what a TCP connection stuck in retransmission does to the protocol).
    """

    addresses: frozenset[Address]


class DelayPeers(msgspec.Struct, frozen=True):
    """Hold every send to these addresses for ``seconds`` before it goes out (in order, as a slow
    network path would)."""

    addresses: frozenset[Address]
    seconds: float


class _Delayed(msgspec.Struct, frozen=True):
    """Timer -> transport: a send held back by ``DelayPeers``, due now."""

    send: SendTo


class FaultyTransport(TransportActor):
    """A ``TransportActor`` that drops or delays sends to the members a test names."""

    def __init__(self, *, loop: IoLoop, **options: Any) -> None:
        super().__init__(loop=loop, **options)
        self._scheduler = loop
        self._blocked: frozenset[Address] = frozenset()
        self._delayed: frozenset[Address] = frozenset()
        self._delay = 0.0
        self._stalled: dict[Address, int] = {}  # a member -> its link that lost a frame

    def on_receive(self, message: Any) -> Any:
        match message:
            case BlockPeers(addresses=addresses):
                self._blocked = addresses
                self._withdraw(addresses)
            case DelayPeers(addresses=addresses, seconds=seconds):
                self._delayed, self._delay = addresses, seconds
                self._withdraw(addresses)
            case SendTo(address=address, on_sent=on_sent) if (
                address in self._blocked or address in self._stalled
            ):
                link = self.route(address)
                if link is not None:
                    self._stalled[address] = link  # the frame is lost: this link is stuck now
                notify_sent(on_sent)
            case SendTo(address=address) if address in self._delayed:
                self._scheduler.call_later(self._delay, self.actor_ref, _Delayed(message))
            case _Delayed(send=send):
                super().on_receive(send)
            case _:
                super().on_receive(message)
                self._stalled = {
                    address: link
                    for address, link in self._stalled.items()
                    if self.route(address) == link  # closed or replaced: no longer stuck
                }
        return None

    def shares(self, address: Address) -> bool:
        """Sends to a member a fault applies to must all come here: none straight to its link."""
        return not (
            address in self._blocked or address in self._delayed or address in self._stalled
        )

    def _withdraw(self, addresses: frozenset[Address]) -> None:
        for address in addresses:
            self.shared_routes.pop(address, None)
