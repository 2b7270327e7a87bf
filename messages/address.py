"""Network address of a member: ``Address(host, port)`` and its parser."""

from __future__ import annotations

from typing import Annotated

import msgspec

from messages.limits import MAX_HOST_LENGTH

__all__ = [
    "DEFAULT_PORT",
    "Address",
]

DEFAULT_PORT = 5701


class Address(msgspec.Struct, frozen=True, order=True):
    """Where a member listens. Equality, hash and order are on ``(host, port)``."""

    host: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HOST_LENGTH)]
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)]

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("Address host must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"Address port {self.port} is outside 0..65535")

    @classmethod
    def parse(cls, text: str | Address, default_port: int = DEFAULT_PORT) -> Address:
        """Parse ``"host:port"``, ``"[v6]:port"``, ``"[v6]"`` or a bare host (port 5701).

        A bare IPv6 address without brackets (``"::1"``) is taken as a host.
        """
        if isinstance(text, Address):
            return text
        if not isinstance(text, str):
            raise TypeError(f"Address must be a str or Address, not {type(text).__name__}")
        value = text.strip()
        if not value:
            raise ValueError("Empty address")
        if value.startswith("["):
            host, sep, rest = value[1:].partition("]")
            if not sep or not host:
                raise ValueError(f"Malformed IPv6 address {text!r}: expected '[host]:port'")
            if not rest:
                return cls(host, default_port)
            if not rest.startswith(":"):
                raise ValueError(f"Malformed address {text!r}: expected ':' after ']'")
            return cls(host, _parse_port(rest[1:], text))
        if value.count(":") > 1:
            return cls(value, default_port)
        host, sep, port = value.partition(":")
        if not host:
            raise ValueError(f"Malformed address {text!r}: missing host")
        return cls(host, _parse_port(port, text) if sep else default_port)

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _parse_port(port: str, text: str) -> int:
    if not port.isdigit():
        raise ValueError(f"Malformed address {text!r}: port must be a number")
    number = int(port)
    if number > 65535:
        raise ValueError(f"Malformed address {text!r}: port {number} is outside 0..65535")
    return number
