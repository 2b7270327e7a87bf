"""Wire framing: length-prefixed frames and a MessagePack codec for a tagged union of Structs.

A frame is a 4-byte big-endian unsigned payload length followed by the payload. A reader
thread feeds received bytes to a ``FrameDecoder`` and hands each payload to ``Codec.decode``;
any ``FrameError`` means the peer sent something invalid and the connection should be closed.
"""

from __future__ import annotations

import enum
from typing import Any, Union

import msgspec

from messages.settings import Settings

__all__ = [
    "HEADER_BYTES",
    "MAX_FRAME_LENGTH",
    "Codec",
    "DecodeError",
    "DecodeFailure",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "TruncatedFrame",
    "decode_with",
    "encode_frame",
]

HEADER_BYTES = 4
MAX_FRAME_LENGTH = 2 ** (8 * HEADER_BYTES) - 1
_LAN = Settings.lan()
# Consumed bytes at the front of the buffer are dropped once they are this many and at least
# half of the buffer, so compaction stays amortised O(1) per byte.
_COMPACT_BYTES = 64 * 1024


class FrameError(ValueError):
    """The byte stream or a payload is invalid; the connection should be closed."""


class FrameTooLarge(FrameError):
    """A frame header announced more payload bytes than allowed."""


class TruncatedFrame(FrameError):
    """The stream ended inside a frame."""


class DecodeFailure(enum.Enum):
    """Why a payload could not be decoded."""

    MALFORMED = "malformed payload"
    """Not MessagePack, or not readable as such (truncated, invalid UTF-8 in a string, ...)."""
    INVALID = "invalid message"
    """Well-formed MessagePack that does not fit the expected type (unknown tag, bad field)."""


class DecodeError(FrameError):
    """A payload is not a valid message of the expected type; ``failure`` says which way."""

    def __init__(self, failure: DecodeFailure, detail: str) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure
        self.detail = detail


def decode_with(decoder: msgspec.msgpack.Decoder[Any], payload: bytes) -> Any:
    """``decoder.decode(payload)``, with every failure raised as ``DecodeError``.

    msgspec signals a bad payload with ``ValidationError`` (wrong type) or ``DecodeError``
    (bad bytes), but which one, and its text, changes between its releases (invalid UTF-8 was a
    ``UnicodeDecodeError`` before 0.23): callers handle only this project's ``DecodeError``.
    """
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as error:
        raise DecodeError(DecodeFailure.INVALID, str(error)) from error
    except Exception as error:  # anything else the bytes provoke
        raise DecodeError(DecodeFailure.MALFORMED, f"{type(error).__name__}: {error}") from error


def encode_frame(payload: bytes) -> bytes:
    """The frame carrying ``payload``: its length as 4 bytes big-endian, then the payload."""
    length = len(payload)
    if length > MAX_FRAME_LENGTH:
        raise FrameTooLarge(
            f"payload of {length} bytes does not fit a frame (max {MAX_FRAME_LENGTH})"
        )
    return length.to_bytes(HEADER_BYTES, "big") + payload


class FrameDecoder:
    """Splits a byte stream into frame payloads, keeping partial frames across ``feed`` calls.

    Bytes are appended to one buffer and read at an offset; consumed bytes are dropped only
    occasionally, so a big frame arriving in many small pieces costs linear time. A header
    announcing more than ``max_frame_bytes`` (``first_frame_bytes`` for the first
    ``first_frames`` frames, when given: a handshake is small, and a stranger must not make us
    buffer megabytes before saying who it is) raises ``FrameTooLarge`` at once, without waiting
    for its payload; the decoder then stays failed and raises that error on every later ``feed``.
    """

    def __init__(
        self,
        max_frame_bytes: int = _LAN.max_frame_bytes,
        first_frame_bytes: int | None = None,
        first_frames: int = 1,
    ) -> None:
        _check_limit("max_frame_bytes", max_frame_bytes)
        if first_frame_bytes is not None:
            _check_limit("first_frame_bytes", first_frame_bytes)
        if first_frames < 1:
            raise ValueError(f"first_frames must be at least 1, got {first_frames}")
        self.max_frame_bytes = max_frame_bytes
        self._first_frame_bytes = first_frame_bytes
        self._first_frames_left = first_frames
        self._buffer = bytearray()
        self._offset = 0
        self._error: FrameTooLarge | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes received that are not yet part of a complete frame."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Add received bytes; return the payloads of every frame completed by them, in order."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        payloads: list[bytes] = []
        offset = self._offset
        end = len(buffer)
        with memoryview(buffer) as view:
            while end - offset >= HEADER_BYTES:
                length = int.from_bytes(view[offset : offset + HEADER_BYTES], "big")
                first = self._first_frame_bytes
                limit = self.max_frame_bytes if first is None else first
                if length > limit:
                    where = "" if first is None else " for a first frame"
                    self._error = FrameTooLarge(
                        f"frame header announces {length} bytes, more than the maximum of "
                        f"{limit}{where}"
                    )
                    raise self._error
                frame_end = offset + HEADER_BYTES + length
                if frame_end > end:
                    break
                payloads.append(bytes(view[offset + HEADER_BYTES : frame_end]))
                if first is not None:
                    self._first_frames_left -= 1
                    if not self._first_frames_left:
                        self._first_frame_bytes = None
                offset = frame_end
        self._offset = offset
        self._compact()
        return payloads

    def finish(self) -> None:
        """Check the end of the stream: raise ``TruncatedFrame`` if a partial frame remains."""
        if self.pending_bytes:
            raise TruncatedFrame(
                f"stream ended inside a frame: {self.pending_bytes} bytes of an incomplete frame"
            )

    def _compact(self) -> None:
        offset = self._offset
        if offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        elif offset >= _COMPACT_BYTES and offset * 2 >= len(self._buffer):
            del self._buffer[:offset]
            self._offset = 0


def _check_limit(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 < value <= MAX_FRAME_LENGTH:
        raise ValueError(f"{name} must be in 1..{MAX_FRAME_LENGTH}, got {value}")


class Codec:
    """Encodes and decodes messages of a fixed tagged union of msgspec Structs as MessagePack.

    Every type must be a Struct declared with a tag (``tag=True`` or an explicit tag), all with
    the same tag field and distinct tags, so the decoder knows each payload's type.
    """

    def __init__(self, types: tuple[type[msgspec.Struct], ...]) -> None:
        if not isinstance(types, tuple) or not types:
            raise TypeError("Codec needs a non-empty tuple of tagged msgspec Struct types")
        tags: dict[object, type[msgspec.Struct]] = {}
        for message_type in types:
            if not (isinstance(message_type, type) and issubclass(message_type, msgspec.Struct)):
                raise TypeError(f"Codec types must be msgspec Struct classes, got {message_type!r}")
            config = message_type.__struct_config__
            if config.tag is None:
                raise TypeError(
                    f"{message_type.__qualname__} is not a tagged Struct: declare it with tag=True"
                )
            if config.tag in tags:
                raise TypeError(
                    f"{message_type.__qualname__} and {tags[config.tag].__qualname__} share the "
                    f"tag {config.tag!r}"
                )
            tags[config.tag] = message_type
        tag_fields = {message_type.__struct_config__.tag_field for message_type in types}
        if len(tag_fields) > 1:
            raise TypeError(
                f"Codec types must share one tag field, got {sorted(map(str, tag_fields))}"
            )
        self.types = types
        self._type_set = frozenset(types)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(
            Union[types]  # noqa: UP007
        )

    def encode(self, message: msgspec.Struct) -> bytes:
        """The payload for ``message``, which must be of one of the codec's types."""
        if type(message) not in self._type_set:
            raise TypeError(f"{type(message).__qualname__} is not a message type of this codec")
        return self._encoder.encode(message)

    def decode(self, payload: bytes) -> msgspec.Struct:
        """The message in ``payload``; ``DecodeError`` for garbage, unknown tags or bad fields,
        whatever msgspec raised (see ``decode_with``): a reader only has to handle ``FrameError``.
        """
        message: msgspec.Struct = decode_with(self._decoder, payload)
        return message
