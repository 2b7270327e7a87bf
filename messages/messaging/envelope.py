"""Application messages between nodes: what an ``Envelope`` carries, in order, from one member's
actors to another's."""

from __future__ import annotations

from typing import Annotated

import msgspec

from messages.limits import MAX_ID_LENGTH, MAX_NAME_LENGTH, Counter, MemberId, Reason
from messages.messaging.versions import VersionDigest
from messages.vector_clock import VectorClock

__all__ = [
    "MAX_RUN",
    "Answer",
    "Ask",
    "Envelope",
    "EnvelopeBody",
    "Envelopes",
    "Failure",
    "Name",
    "Publish",
    "Tell",
    "size_bound",
]

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
"""An actor's registered name, a topic, or an application message type's name."""


class Tell(msgspec.Struct, frozen=True, tag=True):
    """An application message for the actor registered as ``to``; ``kind`` names its type."""

    to: Name
    kind: Name
    payload: msgspec.Raw


class Ask(msgspec.Struct, frozen=True, tag=True):
    """A request for the actor registered as ``to``; answered by ``Answer`` or ``Failure``."""

    to: Name
    kind: Name
    payload: msgspec.Raw
    ask_id: Counter


class Answer(msgspec.Struct, frozen=True, tag=True):
    """The reply to ask ``ask_id``: the remote actor's return value."""

    ask_id: Counter
    kind: Name
    payload: msgspec.Raw


class Failure(msgspec.Struct, frozen=True, tag=True):
    """Ask ``ask_id`` failed.

    ``error`` names why (see ``messages.wire.remote``), ``message`` says it.
    """

    ask_id: Counter
    error: Name
    message: Reason


class Publish(msgspec.Struct, frozen=True, tag=True):
    """A message for every subscriber of ``topic`` on every member; ``clock`` orders publishes
    across members (``messages.messaging.causal``)."""

    topic: Name
    kind: Name
    payload: msgspec.Raw
    clock: VectorClock


EnvelopeBody = Tell | Ask | Answer | Failure | Publish
"""What an ``Envelope`` carries: an application message, an ask's outcome, or a publish."""


class Envelope(msgspec.Struct, frozen=True, tag=True, omit_defaults=True, kw_only=True):
    """An application message from ``sender``, delivered in order (``messages.messaging.delivery``).

    ``sequence`` numbers the sender's envelopes to this receiver (1, 2, ...); ``version`` is the
    digest of the membership version the sender had seen when it sent it
    (``messages.messaging.versions``), 8 bytes at any cluster size. ``version_clock`` is that
    version itself, sent only when the receiver may not know it yet (``Definitions``).

    ``sender`` is left out on the wire: a receiver takes an envelope only from its sender's own
    link, so it sets ``sender`` from the link's handshake identity (one that names another sender
    is dropped). Envelopes within a node always name it.
    """

    sender: MemberId = ""
    sequence: Annotated[int, msgspec.Meta(ge=1)]
    version: VersionDigest
    body: EnvelopeBody
    version_clock: VectorClock | None = None


MAX_RUN = 1024
"""Envelopes in one ``Envelopes`` frame: enough to amortise a frame, a decode and an actor's turn
over many messages, few enough that one frame is bounded work for its receiver."""


class Envelopes(msgspec.Struct, frozen=True, tag=True):
    """A run of envelopes from one sender to one receiver, in their order, in one frame: what a
    sender writes when several wait for the same link (one frame header, one decode and one hop
    to the ordering actor for them all). Each is an ``Envelope`` as if sent alone."""

    envelopes: Annotated[list[Envelope], msgspec.Meta(min_length=1, max_length=MAX_RUN)]


_FIXED_BYTES = 192  # tags, field names, headers, numbers: what no text or payload adds
_CLOCK_ENTRY_BYTES = 4 * MAX_ID_LENGTH + 16


def size_bound(envelope: Envelope) -> int:
    """At most how many bytes ``envelope`` takes encoded (a character takes at most 4 bytes):
    what a sender counts to keep a run of envelopes within a frame."""
    body = envelope.body
    clock = envelope.version_clock
    entries = 0 if clock is None else len(clock.timestamps)
    if isinstance(body, Tell | Ask):
        size = len(body.payload) + 4 * (len(body.to) + len(body.kind))
    elif isinstance(body, Answer):
        size = len(body.payload) + 4 * len(body.kind)
    elif isinstance(body, Failure):
        size = 4 * (len(body.error) + len(body.message))
    else:
        size = len(body.payload) + 4 * (len(body.topic) + len(body.kind))
        entries += len(body.clock.timestamps)
    return _FIXED_BYTES + 4 * len(envelope.sender) + size + _CLOCK_ENTRY_BYTES * entries
