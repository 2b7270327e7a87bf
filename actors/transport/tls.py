"""TLS for links: a layer between a link's socket bytes and its frames, in the one I/O thread.

``TlsConfig`` says which certificate, key and CA a node uses; ``Tls`` holds the ``ssl`` contexts
built from it and gives each new link its ``TlsLayer``. Members use mutual TLS: a member's
listener asks every peer for a certificate signed by the CA (``require_client_cert``), and a
member presents its own when it dials. A client presents a certificate when it has one.

Why memory BIOs (``SSLContext.wrap_bio``, an ``SSLObject``) and not ``wrap_socket``: the selector
keeps watching the plain socket, and the layer only turns bytes into bytes, so the loop's read and
write paths stay what they are (one ``recv``, one ``send`` per event) with nothing hidden in the
socket. With a non-blocking ``SSLSocket``, decrypted records can wait inside OpenSSL where the
selector does not see them (``pending()``), a handshake turns reads into writes and back
(``SSLWantRead``/``SSLWantWrite`` from either call), and a write that could not finish must be
retried with the very same bytes, which the link's two lanes would not guarantee (a membership
frame queued meanwhile goes first). Here every record a ``recv`` brings is decrypted at once, and
a batch of frames is encrypted whole; what the socket does not take waits as ciphertext
(``unsent``), and no plaintext is taken before it has gone out, so at most one batch waits there.

Hostnames are not checked by default (``check_hostname``): members are addressed by IP, and the
identity that matters is "holds a certificate signed by the cluster's CA". A link's TLS handshake
falls under the handshake bounds the loop already has: ``handshake_timeout`` (an accepted link
must say its ``Hello``, which comes after the TLS handshake, within it; a dialled link must finish
its TLS handshake within it) and the pending-handshake limits. A failure is logged with its reason
on both ends, and on a dialled link from which nothing came yet it is told to the link's
``deliver_to`` as a ``HelloRefused`` naming TLS, as a member's refusal would be: a join or a
client's start then fails with ``JoinRefusedError``. A plain peer on a TLS listener is answered by
a plain ``HelloRefused`` before the close, so it fails the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import pykka

from messages.membership.effects import Inbound
from messages.wire.framing import Codec, encode_frame
from messages.wire.handshake import Hello, HelloRefused, Role

if TYPE_CHECKING:
    from actors.transport.link import Link

__all__ = ["Tls", "TlsConfig", "TlsError", "TlsLayer"]

logger = logging.getLogger(__name__)

_HANDSHAKE_RECORD = 0x16  # the first byte of a TLS ClientHello; a frame's first byte is not it
_RECORD_BYTES = 16 * 1024  # the most plaintext a TLS record holds
PLAIN_REFUSED = "this member accepts TLS links only, and the peer spoke plain TCP"


class TlsError(ConnectionError):
    """A link's TLS failed (a handshake refused or broken, a bad record); the message says how."""


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    """The files of a node's TLS: PEM certificate (chain), its key, and the CA that signs peers.

    A member needs ``cert_file`` and ``key_file``; a client only ``ca_file``, unless the members
    ask for client certificates (``require_client_cert``, the default on a member's listener:
    without it, a peer with no certificate is let in as a client only). ``check_hostname`` also
    checks that a dialled peer's certificate names the host dialled (an IP address or a name).
    Construction loads every file, so a missing file or a key that does not match the
    certificate is a ``ValueError`` at once.
    """

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    require_client_cert: bool = True
    check_hostname: bool = False

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS: a certificate needs its key, and a key its certificate")
        self.client_context()
        if self.cert_file is not None:
            self.server_context()

    def client_context(self) -> ssl.SSLContext:
        """The context of dialled links: checks the peer against the CA, shows our certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = self.check_hostname
        self._load(context)
        return context

    def server_context(self) -> ssl.SSLContext:
        """The context of a member's listener (a ``ValueError`` without a certificate)."""
        if self.cert_file is None:
            raise ValueError("TLS: a member needs a certificate and its key (mutual TLS)")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        context.num_tickets = 0  # links are long-lived and never resumed: no session tickets
        self._load(context)
        return context

    def _load(self, context: ssl.SSLContext) -> None:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        for what, path in (("CA", self.ca_file), ("certificate", self.cert_file)):
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"TLS: the {what} file {path} does not exist")
        try:
            context.load_verify_locations(cafile=self.ca_file)
        except (ssl.SSLError, OSError) as error:
            raise ValueError(f"TLS: cannot load the CA file {self.ca_file}: {error}") from error
        if self.cert_file is None:
            return
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as error:
            raise ValueError(
                f"TLS: cannot load the certificate {self.cert_file} with the key "
                f"{self.key_file} (a missing file, or a key that does not match): {error}"
            ) from error


class Tls:
    """A node's TLS contexts, and the layer each new link gets (loop thread)."""

    def __init__(self, config: TlsConfig, codec: Codec, read_bytes: int) -> None:
        self.config = config
        self._client = config.client_context()
        self._server = None if config.cert_file is None else config.server_context()
        self._plain_refusal = encode_frame(codec.encode(HelloRefused(reason=PLAIN_REFUSED)))
        # What every layer decrypts into, one at a time: the records a recv of ``read_bytes``
        # completes, with what an earlier one left of a record (at most 16 KiB of plaintext).
        self._buffer = memoryview(bytearray(read_bytes + _RECORD_BYTES))

    def attach(self, link: Link, wake: Callable[[], None]) -> None:
        """Give ``link`` its layer: the server side for an accepted link (whose ``Hello`` is then
        also checked against the certificate it showed), the client side for a dialled one.
        ``wake`` asks the loop to flush the link at the end of its round."""
        if link.check_hello is None:
            hostname = None
            if self.config.check_hostname and link.peer is not None:
                hostname = link.peer.host
            link.tls = TlsLayer(
                self._client,
                hostname,
                link.sock,
                link.name,
                wake=wake,
                buffer=self._buffer,
                refuse=_refusal(link),
            )
            return
        assert self._server is not None  # only a member listens, and a member has a certificate
        layer = TlsLayer(
            self._server,
            None,
            link.sock,
            link.name,
            wake=wake,
            buffer=self._buffer,
            plain_refusal=self._plain_refusal,
        )
        link.tls = layer
        check = link.check_hello

        def check_hello(hello: Hello) -> str | None:
            return layer.check_role(hello) or check(hello)

        link.check_hello = check_hello


def _refusal(link: Link) -> Callable[[str], None]:
    """Tell a dialled link's ``deliver_to`` that its TLS failed, as a refusal of its ``Hello``."""

    def refuse(reason: str) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            link.deliver_to.tell(
                Inbound(message=HelloRefused(reason=reason), link=link.id, peer=link.name)
            )

    return refuse


class TlsLayer:
    """One link's TLS: ``recv`` and ``send`` as a non-blocking socket's, in plaintext.

    ``send`` takes all of a batch (encrypted at once) or none of it: none before the handshake is
    done, nor while ciphertext of an earlier batch is still ``unsent``. ``waiting`` tells the loop
    whether to watch the socket for writability.
    """

    __slots__ = (
        "_incoming",
        "_name",
        "_outgoing",
        "_plain_refusal",
        "_received",
        "_refuse",
        "_sock",
        "_started",
        "_tls",
        "_view",
        "_wake",
        "established",
        "unsent",
    )

    def __init__(
        self,
        context: ssl.SSLContext,
        hostname: str | None,
        sock: socket.socket,
        name: str,
        *,
        wake: Callable[[], None],
        buffer: memoryview,
        refuse: Callable[[str], None] | None = None,
        plain_refusal: bytes | None = None,
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        server_side = plain_refusal is not None  # an accepted link's layer answers plain text
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side, hostname)
        self._sock = sock
        self._name = name
        self._wake = wake
        self._refuse = refuse  # a dialled link's: tells a failure before anything came
        self._plain_refusal = plain_refusal  # an accepted link's: the answer to plain text
        self._view = buffer  # shared by the loop's layers: filled and copied out in one recv
        self._started = False  # any bytes from the peer yet
        self._received = False  # any plaintext from the peer yet
        self.established = False
        self.unsent: bytes | memoryview = b""

    # -- the socket-like side ------------------------------------------------------------------

    def recv(self, size: int) -> bytes | memoryview:
        """Plaintext the records read now hold; ``b""`` when the peer has closed; raises
        ``BlockingIOError`` when they hold none yet, ``TlsError`` when TLS fails. The plaintext
        may be a view of the loop's shared buffer, valid until the next ``recv`` (the frame
        decoder copies it at once)."""
        data = self._sock.recv(size)
        if not data:
            if not self.established:
                # No refusal: a member over its pending-handshake limit closes at once, too.
                reason = f"{self._name} closed the connection during the TLS handshake"
                raise self._failed(reason, refusal=False)
            return b""
        if not self._started:
            self._started = True
            if self._plain_refusal is not None and data[0] != _HANDSHAKE_RECORD:
                with contextlib.suppress(OSError):
                    self._sock.send(self._plain_refusal)
                raise self._failed(f"{self._name} spoke plain TCP; this member accepts TLS only")
        self._incoming.write(data)
        if not self._handshake():
            raise BlockingIOError
        chunks = []
        filled = 0
        try:
            while True:
                if filled == len(self._view):
                    chunks.append(bytes(self._view))
                    filled = 0
                count = self._tls.read(len(self._view) - filled, self._view[filled:])
                assert isinstance(count, int)  # with a buffer, read says how much it wrote
                if not count:
                    break
                filled += count
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        except ssl.SSLError as error:
            raise self._failed(self._broken(error)) from error
        self._push()
        if not chunks and not filled:
            raise BlockingIOError
        self._received = True
        if not chunks:
            return self._view[:filled]
        return b"".join([*chunks, self._view[:filled]])

    def send(self, data: bytes) -> int:
        """Encrypt all of ``data`` and send what the socket takes (``len(data)``), or take
        nothing (0) while the handshake runs or earlier ciphertext is ``unsent``."""
        if not self._drain() or not self._handshake() or not data:
            return 0
        view = memoryview(data)
        try:
            while view:
                view = view[self._tls.write(view) :]
        except ssl.SSLError as error:
            raise self._failed(self._broken(error)) from error
        self._push()
        return len(data)

    def waiting(self, outbound: int) -> bool:
        """Whether the socket's writability matters: ciphertext is unsent, or ``outbound``
        plaintext bytes wait and the handshake is done."""
        return bool(self.unsent) or (outbound > 0 and self.established)

    def check_role(self, hello: Hello) -> str | None:
        """Why an accepted link's ``Hello`` is refused: a member role without a certificate."""
        if hello.role is Role.MEMBER and not self._tls.getpeercert(binary_form=True):
            return "TLS: a member must present a certificate signed by the cluster's CA"
        return None

    # -- inside ----------------------------------------------------------------------------------

    def _handshake(self) -> bool:
        """Advance the handshake; True once it is done (``wake`` then flushes what waited)."""
        if self.established:
            return True
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._push()
            return False
        except ssl.SSLError as error:
            with contextlib.suppress(OSError):
                self._push()  # the alert that tells the peer why
            reason = f"TLS handshake with {self._name} failed: {_text(error)}"
            raise self._failed(reason) from error
        self.established = True
        self._push()
        self._wake()
        return True

    def _push(self) -> None:
        """Move what TLS wrote (records, handshake flights, alerts) towards the socket."""
        out = self._outgoing.read()
        if out:
            self.unsent = bytes(self.unsent) + out if self.unsent else out
            if not self._drain():
                self._wake()

    def _drain(self) -> bool:
        """Send unsent ciphertext; True when none is left."""
        if self.unsent:
            try:
                sent = self._sock.send(self.unsent)
            except (BlockingIOError, InterruptedError):
                return False
            self.unsent = memoryview(self.unsent)[sent:] if sent < len(self.unsent) else b""
        return not self.unsent

    def _broken(self, error: ssl.SSLError) -> str:
        """Why TLS failed after the handshake: the peer's alert (in TLS 1.3, how a server
        refuses a client's certificate), or a bad record."""
        if "ALERT" in (error.reason or ""):
            return f"TLS with {self._name} failed: the peer ended it: {_text(error)}"
        return f"TLS with {self._name} failed: {_text(error)}"

    def _failed(self, reason: str, refusal: bool = True) -> TlsError:
        """Log ``reason``; on a dialled link from which nothing came yet, tell it as a refusal."""
        logger.error("Closing a link: %s", reason)
        if refusal and self._refuse is not None and not self._received:
            self._refuse(reason)
        return TlsError(reason)


def _text(error: ssl.SSLError) -> str:
    """An ``ssl`` error in a line: OpenSSL's reason code, and the verify message if any."""
    detail = getattr(error, "verify_message", None) or error.reason or str(error)
    return f"{error.reason}: {detail}" if error.reason and detail != error.reason else str(detail)
