"""How a remote ask's outcome is made and handed over, on both ends; plain functions, no actor.

At the asked node: ``ask_without_waiting`` runs the ask against a local actor with a reply future
that hands the outcome to a callback in the actor's thread (nobody blocks on it), and
``answer_body`` makes that outcome the ``Answer`` or ``Failure`` that carries it back. At the asking
node: ``reply`` settles the asker's future or tells its actor, and ``remote_error`` says why a
message could not travel. ``local_envelope`` wraps a body for an actor of this very node.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import msgspec
import pykka

from actors.messaging.futures import fail, settle
from messages.local.routing import RemoteAsk, RemoteFailure, RemoteReply
from messages.messaging.envelope import Answer, Envelope, Failure
from messages.messaging.versions import EMPTY_DIGEST
from messages.wire.remote import NoSuchActor, RemoteError, UnknownMessageType, encode_payload

__all__ = [
    "OnOutcome",
    "answer_body",
    "ask_without_waiting",
    "local_envelope",
    "remote_error",
    "reply",
]

logger = logging.getLogger(__name__)

OnOutcome = Callable[[Any, BaseException | None], None]
"""Takes an ask's outcome: its value, or the error that ended it."""


class _Completion:
    """Stands in for the future of a pykka ask: the actor's loop sets it once it has handled the
    message (``set`` or ``set_exception``), and this hands the outcome on."""

    __slots__ = ("_answer",)

    def __init__(self, answer: OnOutcome) -> None:
        self._answer = answer

    def set(self, value: Any = None) -> None:
        self._answer(value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        error = (exc_info or sys.exc_info())[1]
        self._answer(None, error if error is not None else RuntimeError("unknown failure"))


class _AskEnvelope:
    """What a pykka actor's loop takes from its inbox: the message and where its reply goes."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: Any, reply_to: _Completion) -> None:
        self.message = message
        self.reply_to = reply_to


def ask_without_waiting(actor: pykka.ActorRef[Any], message: Any, answer: OnOutcome) -> None:
    """Ask ``actor`` and have ``answer`` called with the outcome, in the actor's thread."""
    # What ActorRef.ask does, with a reply future that hands the answer on instead of blocking.
    actor.actor_inbox.put(_AskEnvelope(message, _Completion(answer)))  # type: ignore[arg-type]


def answer_body(
    ask_id: int, value: Any = None, error: BaseException | None = None
) -> Answer | Failure:
    """What carries the outcome of ask ``ask_id`` back: the value, or the error by type name and
    text (a ``RemoteError`` of the router's own is known by its name at the other end; a remote
    actor's exception arrives as ``RemoteActorFailed``)."""
    if error is None:
        try:
            kind, payload = encode_payload(value)
        except TypeError as encode_error:
            return Failure(ask_id, "TypeError", f"the answer cannot travel: {encode_error}")
        return Answer(ask_id, kind, msgspec.Raw(payload))
    if isinstance(error, pykka.ActorDeadError):
        error = NoSuchActor(f"the actor stopped before it answered: {error}")
    return Failure(ask_id, type(error).__name__, str(error)[:2048])


def reply(ask: RemoteAsk, *, value: Any = None, error: RemoteError | None = None) -> None:
    """End ``ask`` for its asker: settle its future, or tell its actor the reply or failure."""
    reply_to = ask.reply_to
    if isinstance(reply_to, pykka.Future):
        if error is None:
            settle(reply_to, value)
        else:
            fail(reply_to, error)
        return
    message = (
        RemoteReply(ask.correlation, value)
        if error is None
        else RemoteFailure(ask.correlation, error)
    )
    try:
        reply_to.tell(message)
    except pykka.ActorDeadError:
        logger.debug("The actor that asked %r has stopped", ask.name)


def remote_error(error: TypeError | RemoteError) -> RemoteError:
    """A ``TypeError`` (the message cannot travel) as the ``RemoteError`` an asking actor gets."""
    if isinstance(error, RemoteError):
        return error
    failure = UnknownMessageType(str(error))
    failure.__cause__ = error
    return failure


def local_envelope(sender: str, body: Any) -> Envelope:
    """An envelope that never leaves this node (to one of its own actors)."""
    return Envelope(sender=sender, sequence=1, version=EMPTY_DIGEST, body=body)
