"""The handshake: the first frame on every connection, and the rule an accepting member applies.

The dialling side sends ``Hello``; the accepting side answers ``HelloAccepted`` or
``HelloRefused`` (and closes). Nothing else is read before a valid ``Hello``.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from messages.address import Address
from messages.limits import MAX_NAME_LENGTH, Counter, MemberId, Reason
from messages.settings import PROTOCOL_VERSION, Settings

__all__ = [
    "HANDSHAKE_FRAME_BYTES",
    "Hello",
    "HelloAccepted",
    "HelloRefused",
    "Identity",
    "Role",
    "check_hello",
    "keeps_dialled_link",
]

HANDSHAKE_FRAME_BYTES = 4096
"""Largest first frame an accepting side reads: a ``Hello`` is about 200 bytes, and its longest
fields (cluster name and host, 255 characters each; id, 64) fit in 4 KiB many times over."""


class Role(enum.Enum):
    """What the dialling side is: a cluster member or a watching client."""

    MEMBER = "member"
    CLIENT = "client"


class Hello(msgspec.Struct, frozen=True, tag=True):
    """Handshake from the dialling side: who it is and what it speaks."""

    cluster_name: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
    protocol_version: Counter
    uuid: MemberId
    role: Role
    address: Address | None = None


class Identity(msgspec.Struct, frozen=True):
    """Who is at the other end of a link, as its handshake established it (never on the wire).

    An accepted link's is what its ``Hello`` said; a dialled link's, the ``uuid`` of the peer's
    ``HelloAccepted`` (a member: only members accept) at the ``address`` dialled. Without a shared
    secret a ``Hello`` is a claim: the identity binds everything said on the link to that one
    claim, so nobody speaks on it in another's name.
    """

    uuid: str
    role: Role
    address: Address | None = None

    @classmethod
    def of(cls, hello: Hello) -> Identity:
        """What an accepted ``hello`` establishes."""
        return cls(hello.uuid, hello.role, hello.address)


class HelloAccepted(msgspec.Struct, frozen=True, tag=True):
    """Handshake accepted by the member with ``uuid``."""

    uuid: MemberId


class HelloRefused(msgspec.Struct, frozen=True, tag=True):
    """Handshake refused; the connection closes after this frame."""

    reason: Reason


def check_hello(settings: Settings, hello: Hello) -> str | None:
    """Why a member with ``settings`` refuses ``hello`` (another cluster name or protocol
    version), or None when it accepts it."""
    if hello.cluster_name != settings.cluster_name:
        return (
            f"cluster name mismatch: this member is in {settings.cluster_name!r}, "
            f"the peer asked for {hello.cluster_name!r}"
        )
    if hello.protocol_version != PROTOCOL_VERSION:
        return (
            f"protocol version mismatch: this member speaks {PROTOCOL_VERSION}, "
            f"the peer {hello.protocol_version}"
        )
    return None


def keeps_dialled_link(own: Address, peer: Address) -> bool:
    """Two members that dialled each other at once hold two links: which one carries their
    messages. This member keeps the link it dialled when its address is the lower one; the
    peer, applying the same rule, keeps that same link, and the one who dialled the other link
    closes it (after writing what it had queued there, which is why the other end never does).
    Any other new link from a member (or its next incarnation) replaces the one held."""
    return own < peer
