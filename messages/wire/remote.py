"""Application messages between members: the explicit type registry, payloads, and remote errors.

An application message type is a ``msgspec.Struct`` registered under a name both ends know
(``register(MyMsg)``, or ``@register`` on the class; the name defaults to ``module.QualName``).
A payload travels as MessagePack beside that name and is decoded into exactly that type at the
receiver, never unpickled. Plain MessagePack values (``None``, numbers, strings, bytes, lists,
dicts) travel too, under the empty name; anything else is refused at send time with ``TypeError``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from messages.wire.framing import DecodeError, decode_with

__all__ = [
    "ERRORS",
    "PLAIN",
    "Backpressure",
    "MemberGone",
    "MessageTooLarge",
    "NoMemberAvailable",
    "NoSuchActor",
    "RemoteActorFailed",
    "RemoteError",
    "RemoteTimeout",
    "UnknownMessageType",
    "decode_payload",
    "encode_payload",
    "error_from_wire",
    "register",
]

T = TypeVar("T", bound=type[msgspec.Struct])

_types_by_name: dict[str, type[msgspec.Struct]] = {}
_names_by_type: dict[type[msgspec.Struct], str] = {}
_decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}
_encoder = msgspec.msgpack.Encoder()
_any_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()
PLAIN = ""
"""The kind of a plain MessagePack value (no registered type)."""
_PLAIN_TYPES = (type(None), bool, int, float, str, bytes, list, tuple, dict)


def register(message_type: T, name: str | None = None) -> T:
    """Make ``message_type`` sendable to other members, under ``name`` (default
    ``module.QualName``, which both ends share when they run the same code). Returns the type, so
    it works as a class decorator. Registering a type again under its name is a no-op."""
    if not (isinstance(message_type, type) and issubclass(message_type, msgspec.Struct)):
        raise TypeError(f"only msgspec Struct types can be registered, not {message_type!r}")
    name = name or f"{message_type.__module__}.{message_type.__qualname__}"
    if not name:
        raise ValueError("a message type's name must not be empty")
    # setdefault claims the name in one atomic step (no lock, so no threading in the pure core):
    # of two threads registering different types under one name, exactly one wins.
    known = _types_by_name.setdefault(name, message_type)
    if known is not message_type:
        raise ValueError(f"{name!r} is already the name of {known!r}")
    _decoders[name] = msgspec.msgpack.Decoder(message_type)
    _names_by_type[message_type] = name
    return message_type


def encode_payload(value: Any) -> tuple[str, bytes]:
    """``(kind, payload)`` for ``value``: a registered Struct, or a plain MessagePack value."""
    kind = _names_by_type.get(type(value))
    if kind is not None:
        return kind, _encoder.encode(value)
    if isinstance(value, msgspec.Struct):
        raise TypeError(
            f"{type(value).__qualname__} is not a registered message type: call "
            f"messages.register({type(value).__qualname__}) on every member that sends or "
            "receives it"
        )
    if not isinstance(value, _PLAIN_TYPES):
        raise TypeError(
            f"{type(value).__qualname__} cannot travel to another member: send a registered "
            "msgspec Struct or a plain MessagePack value"
        )
    try:
        return PLAIN, _encoder.encode(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"cannot encode {value!r} for another member: {error}") from error


def decode_payload(kind: str, payload: bytes) -> Any:
    """The value of a payload; ``UnknownMessageType`` for a kind this process has not
    registered, or bytes that do not fit it."""
    decoder = _any_decoder if kind == PLAIN else _decoders.get(kind)
    if decoder is None:
        raise UnknownMessageType(f"message type {kind!r} is not registered here")
    try:
        return decode_with(decoder, payload)
    except DecodeError as error:
        raise UnknownMessageType(
            f"a {kind or 'plain'} payload that cannot be read: {error}"
        ) from None


class RemoteError(Exception):
    """A remote ``tell``/``ask`` could not be carried out; the subclass says why."""


class NoSuchActor(RemoteError):
    """No actor is registered under that name on the member."""


class UnknownMessageType(RemoteError):
    """The member does not know the message's type (it did not register it)."""


class MemberGone(RemoteError):
    """The member left, crashed or was removed before it answered."""


class NoMemberAvailable(RemoteError):
    """No member to send to: the load balancer has none, or the named one is not up."""


class RemoteActorFailed(RemoteError):
    """The remote actor raised; ``error_type`` and the message are the remote exception's."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


class Backpressure(RemoteError):
    """Too many messages to that member are still waiting to be sent (flow control)."""


class MessageTooLarge(RemoteError, ValueError):
    """The payload is larger than the node's flow gate or a frame takes: it can never be sent."""


class RemoteTimeout(RemoteError, TimeoutError):
    """No answer within the ask's timeout."""


ERRORS: dict[str, type[RemoteError]] = {
    error.__name__: error
    for error in (NoSuchActor, UnknownMessageType, MemberGone, Backpressure, RemoteTimeout)
}
"""The errors that travel by name in a ``Failure`` (any other name is a remote actor's own)."""


def error_from_wire(error_type: str, message: str) -> RemoteError:
    """The exception an asker gets for a ``Failure`` that came back."""
    known = ERRORS.get(error_type)
    return known(message) if known is not None else RemoteActorFailed(error_type, message)
