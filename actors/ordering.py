"""The ordering actor: delivers inbound envelopes in causal order and stamps outbound ones."""

from __future__ import annotations

import logging
from typing import Any

import pykka

from messages.causal import CausalBuffer, GetClock, Offer, Stamp
from messages.envelope import Envelope

logger = logging.getLogger(__name__)


class OrderingActor(pykka.ThreadingActor):
    """Holds this node's causal buffer; tells ``deliver_to`` each envelope once its causes are in.

    Messages: ``Envelope`` (inbound, told; a rejected one is logged), ``Offer(envelope)`` (the same,
    asked: a rejected envelope comes back to the asker as ``HoldBackOverflow``/``ValueError``),
    ``Stamp(body)`` (replies the ``Envelope`` to send), ``GetClock()`` (replies the node clock).
    """

    def __init__(
        self, node_id: str, deliver_to: pykka.ActorRef[Any], max_held: int = 10_000
    ) -> None:
        super().__init__()
        self._node_id = node_id
        self._deliver_to = deliver_to
        self._buffer = CausalBuffer(max_held)

    def on_receive(self, message: Any) -> Any:
        match message:
            case Envelope():
                try:
                    self._offer(message)
                except ValueError as error:  # never let bad input stop the actor
                    logger.error(
                        "Node %s rejected an envelope from %r: %s",
                        self._node_id,
                        message.sender,
                        error,
                    )
                return None
            case Offer(envelope=envelope):
                self._offer(envelope)
                return None
            case Stamp(body=body):
                return self._buffer.stamp(self._node_id, body)
            case GetClock():
                return self._buffer.delivered
            case _:
                return super().on_receive(message)

    def _offer(self, envelope: Envelope) -> None:
        for delivered in self._buffer.offer(envelope):
            self._deliver_to.tell(delivered)
