"""The handshake: the first frames on every connection, and the rules both ends apply.

The dialling side sends ``Hello``; the accepting side answers ``HelloAccepted`` or
``HelloRefused`` (and closes). Nothing else is read before a valid ``Hello``.

With a shared secret (``Settings.secret``) the handshake is a mutual challenge-response, and
nothing else either side sent is read before the other has proved it holds the secret:

1. dialler -> ``Hello`` with the dialler's fresh ``nonce``;
2. acceptor -> ``HelloChallenge``: its uuid, its own fresh nonce, and its proofs (an HMAC-SHA256
   under its secret, and under its previous one during a rotation) of the accepting transcript;
3. dialler: checks a proof under a secret it holds (else refuses, and tells the acceptor so with
   ``HelloRefused``), then sends ``HelloProof`` under the newest secret both hold, of the
   dialling transcript, and only then what it had to send;
4. acceptor: checks that proof, then answers ``HelloAccepted`` (or ``HelloRefused``).

A transcript binds both nonces, the whole ``Hello`` (cluster name, protocol version, the
dialler's uuid, role and address), the acceptor's uuid, and a label naming the direction: a
proof made for one direction fails in the other (reflection), one made for a past handshake
fails against a fresh nonce (replay), and the secret itself never crosses the wire. Proofs are
compared with ``hmac.compare_digest``. Both sides must agree on having a secret: a member with a
secret refuses a ``Hello`` without a nonce, and one without a secret refuses a ``Hello`` with
one, so that a misconfiguration is a clear refusal, never a silent downgrade. The nonces come
from the caller (the I/O thread draws them from ``os.urandom``): this module stays pure.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from typing import Annotated

import msgspec

from messages.address import Address
from messages.limits import MAX_NAME_LENGTH, Counter, MemberId, Reason
from messages.settings import PROTOCOL_VERSION, Settings

__all__ = [
    "HANDSHAKE_FRAME_BYTES",
    "NONCE_BYTES",
    "Hello",
    "HelloAccepted",
    "HelloChallenge",
    "HelloProof",
    "HelloRefused",
    "Identity",
    "Role",
    "answer_challenge",
    "challenge",
    "check_hello",
    "check_proof",
    "handshake_frames",
    "keeps_dialled_link",
]

NONCE_BYTES = 32
"""Each side's fresh random nonce: 256 bits, never drawn twice."""

_PROOF_BYTES = hashlib.sha256().digest_size
_ACCEPTING = "pykka-membership handshake: the accepting member proves"
_DIALLING = "pykka-membership handshake: the dialling side proves"
_AUTHENTICATION = "authentication failed"

Nonce = Annotated[bytes, msgspec.Meta(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
Proof = Annotated[bytes, msgspec.Meta(min_length=_PROOF_BYTES, max_length=_PROOF_BYTES)]

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
    nonce: Nonce | None = None  # set when the dialler has a secret: the acceptor must prove it


class HelloChallenge(msgspec.Struct, frozen=True, tag=True):
    """The accepting member's answer to a ``Hello`` with a nonce: who it is, its own nonce, and
    its proofs of the accepting transcript (one per secret it holds, the current one first)."""

    uuid: MemberId
    nonce: Nonce
    proofs: Annotated[tuple[Proof, ...], msgspec.Meta(min_length=1, max_length=2)]


class HelloProof(msgspec.Struct, frozen=True, tag=True):
    """The dialler's proof of the dialling transcript, under a secret both sides hold."""

    proof: Proof


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
    version, or a secret on one side only), or None when it accepts it (with a secret, only
    to challenge it: see ``challenge``)."""
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
    if settings.secret is not None and hello.nonce is None:
        return (
            f"{_AUTHENTICATION}: this member requires the cluster's shared secret, and the peer "
            "has none configured"
        )
    if settings.secret is None and hello.nonce is not None:
        return (
            f"{_AUTHENTICATION}: the peer has a shared secret configured, and this member has "
            "none: configure the same secret on every member and client"
        )
    return None


def handshake_frames(settings: Settings) -> int:
    """How many frames an accepting member reads from a stranger before its handshake ends: the
    ``Hello``, and with a secret its ``HelloProof``."""
    return 1 if settings.secret is None else 2


def challenge(settings: Settings, uuid: str, hello: Hello, nonce: bytes) -> HelloChallenge:
    """The accepting member ``uuid``'s answer to an accepted ``hello``, with its fresh ``nonce``:
    proofs under each of its secrets, so that a peer holding either can check one."""
    transcript = _transcript(_ACCEPTING, hello, uuid, nonce)
    proofs = tuple(_prove(secret, transcript) for secret in _secrets(settings))
    return HelloChallenge(uuid=uuid, nonce=nonce, proofs=proofs)


def answer_challenge(settings: Settings, hello: Hello, answer: object) -> HelloProof | str:
    """The dialler's proof, answering the first frame the acceptor sent after ``hello`` (which
    carried the dialler's nonce); or why the dialler refuses the link instead. The proof is
    made with the newest of the dialler's secrets the acceptor proved it holds."""
    match answer:
        case HelloChallenge(uuid=uuid, nonce=nonce, proofs=proofs):
            transcript = _transcript(_ACCEPTING, hello, uuid, nonce)
            for secret in _secrets(settings):
                expected = _prove(secret, transcript)
                if any(hmac.compare_digest(expected, proof) for proof in proofs):
                    dialling = _transcript(_DIALLING, hello, uuid, nonce)
                    return HelloProof(proof=_prove(secret, dialling))
            return (
                f"{_AUTHENTICATION}: the member did not prove this side's shared secret "
                "(the secrets differ)"
            )
        case HelloRefused(reason=reason):
            return f"the member refused before proving the shared secret: {reason}"
        case _:
            return (
                f"{_AUTHENTICATION}: the member answered {type(answer).__name__} instead of "
                "proving the shared secret"
            )


def check_proof(
    settings: Settings, uuid: str, hello: Hello, nonce: bytes, answer: object
) -> str | None:
    """Why the accepting member ``uuid``, which challenged ``hello`` with ``nonce``, refuses
    ``answer``, the next frame from the dialler; None when it is a proof under one of its
    secrets."""
    match answer:
        case HelloProof(proof=proof):
            transcript = _transcript(_DIALLING, hello, uuid, nonce)
            if any(
                hmac.compare_digest(_prove(secret, transcript), proof)
                for secret in _secrets(settings)
            ):
                return None
            return f"{_AUTHENTICATION}: the peer's proof does not match this member's secret"
        case HelloRefused(reason=reason):
            return f"the peer refused the link: {reason}"
        case _:
            return (
                f"{_AUTHENTICATION}: the peer sent {type(answer).__name__} before proving the "
                "shared secret"
            )


def _secrets(settings: Settings) -> tuple[bytes, ...]:
    """The secrets a member holds, the current one first."""
    held = (settings.secret, settings.previous_secret)
    return tuple(secret for secret in held if secret is not None)


def _transcript(direction: str, hello: Hello, uuid: str, nonce: bytes) -> bytes:
    """What a proof binds: the direction, the dialler's whole ``Hello`` (its nonce in it), the
    acceptor's uuid and its nonce, as MessagePack (the same values give the same bytes)."""
    return msgspec.msgpack.encode((direction, hello, uuid, nonce))


def _prove(secret: bytes, transcript: bytes) -> bytes:
    return hmac.digest(secret, transcript, hashlib.sha256)


def keeps_dialled_link(own: Address, peer: Address) -> bool:
    """Two members that dialled each other at once hold two links: which one carries their
    messages. This member keeps the link it dialled when its address is the lower one; the
    peer, applying the same rule, keeps that same link, and the one who dialled the other link
    closes it (after writing what it had queued there, which is why the other end never does).
    Any other new link from a member (or its next incarnation) replaces the one held."""
    return own < peer
