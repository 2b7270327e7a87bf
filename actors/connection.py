"""ConnectionActor: one TCP link to a peer; a reader thread decodes and tells, a writer thread sends."""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from messages.address import Address
from messages.framing import Codec, FrameDecoder, FrameError, encode_frame
from messages.links import Inbound, LinkClosed, LinkUp, Send
from messages.protocol import HANDSHAKE_FRAME_BYTES, Hello, HelloAccepted, HelloRefused

logger = logging.getLogger(__name__)

HelloCheck = Callable[[Hello], str | None]
"""Returns the reason to refuse a handshake, or None to accept it."""

_READ_CHUNK = 256 * 1024
_MAX_BATCH_BYTES = 256 * 1024


class ConnectionActor(pykka.ThreadingActor):
    """A link made by dialling ``peer`` (sends ``hello`` first) or by accepting ``sock`` (expects one).

    The actor encodes each ``Send`` and queues the frame; a writer thread sends whatever is queued
    in one ``sendall`` (so frames queued together go out as one batch, and the actor never blocks on
    the socket). Decoded messages go to ``deliver_to`` as ``Inbound``; when the link ends, for
    whatever reason, ``manager`` gets one ``LinkClosed`` with a readable reason and this actor stops.
    Bad input (garbage, truncated or oversized frames, unknown tags, no handshake) closes only this
    link. An accepted link must complete its ``Hello`` within ``handshake_timeout`` seconds, in a
    first frame of at most ``HANDSHAKE_FRAME_BYTES``. Sent data left unacknowledged for
    ``unacked_timeout`` seconds closes the link (``TCP_USER_TIMEOUT``, where the OS has it), so a
    connection stuck in retransmission after a network partition gives way to a fresh one.
    """

    def __init__(
        self,
        *,
        codec: Codec,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        max_frame_bytes: int,
        io_timeout: float,
        unacked_timeout: float,
        local_uuid: str,
        peer: Address | None = None,
        hello: Hello | None = None,
        sock: socket.socket | None = None,
        check_hello: HelloCheck | None = None,
        handshake_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if (sock is None) == (peer is None):
            raise ValueError("ConnectionActor needs either a peer to dial or an accepted socket")
        self._codec = codec
        self._deliver_to = deliver_to
        self._manager = manager
        self._max_frame_bytes = max_frame_bytes
        self._io_timeout = io_timeout
        self._unacked_timeout = unacked_timeout
        self._handshake_timeout = handshake_timeout
        self._local_uuid = local_uuid
        self._peer = peer
        self._hello = hello
        self._sock = sock
        self._check_hello = check_hello
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._close_lock = threading.Lock()
        self._closed = threading.Event()
        self._close_reason = "closed locally"
        self._name = "?" if peer is None else str(peer)

    def on_start(self) -> None:
        if self._sock is not None:
            try:
                self._start_io()
            except OSError as error:  # the peer reset the connection before we got to it
                self._finish(f"accepted connection unusable: {error}")

    def _dial(self) -> bool:
        """Connect to the peer on the first send (so an early failure never races a sender)."""
        assert self._peer is not None
        try:
            self._sock = socket.create_connection(
                (self._peer.host, self._peer.port), timeout=self._io_timeout
            )
        except OSError as error:
            self._finish(f"cannot connect to {self._peer}: {error}")
            return False
        self._start_io()
        if self._hello is not None:
            self._write(self._hello)
        return True

    def _start_io(self) -> None:
        sock = self._sock
        assert sock is not None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A peer that stops reading must not block the writer forever: sends time out (the
        # reader's recv stays blocking, so an idle link is not mistaken for a dead one).
        seconds = int(self._io_timeout)
        send_timeout = struct.pack("ll", seconds, int((self._io_timeout - seconds) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, send_timeout)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
            milliseconds = int(self._unacked_timeout * 1000)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)
        self._name = name = self._peer_name()
        self._writer = threading.Thread(
            target=self._write_loop, args=(sock,), name=f"link-writer-{name}", daemon=True
        )
        self._writer.start()
        threading.Thread(target=self._read_loop, name=f"link-reader-{name}", daemon=True).start()

    def on_stop(self) -> None:
        self._close("closed locally")

    def on_receive(self, message: Any) -> Any:
        match message:
            case Send(message=payload):
                if self._sock is None and not self._dial():
                    return None
                self._write(payload)
            case _:
                logger.warning("ConnectionActor ignores unexpected message %r", message)
        return None

    def _peer_name(self) -> str:
        if self._peer is not None:
            return str(self._peer)
        try:
            host, port = self._sock.getpeername()[:2] if self._sock else ("?", 0)
        except OSError:
            return "?"
        return f"{host}:{port}"

    def _write(self, message: Any) -> None:
        """Encode ``message`` and queue its frame for the writer thread (never blocks)."""
        if self._sock is None or self._closed.is_set():
            logger.debug("Dropping %s to closed link %s", type(message).__name__, self._name)
            return
        try:
            frame = encode_frame(self._codec.encode(message))
        except TypeError as error:
            logger.error("Cannot send %r to %s: %s", message, self._name, error)
            return
        self._outbox.put(frame)

    def _write_loop(self, sock: socket.socket) -> None:
        """Send queued frames, all that are waiting in one ``sendall``; end at the None marker."""
        while True:
            frame = self._outbox.get()
            if frame is None:
                return
            batch, size, last = [frame], len(frame), False
            while size < _MAX_BATCH_BYTES:
                try:
                    frame = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if frame is None:
                    last = True
                    break
                batch.append(frame)
                size += len(frame)
            try:
                sock.sendall(batch[0] if len(batch) == 1 else b"".join(batch))
            except OSError as error:
                self._close(f"write failed: {error}")
                return
            if last:
                return

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        handshake_done = self._check_hello is None
        decoder = FrameDecoder(
            self._max_frame_bytes, None if handshake_done else HANDSHAKE_FRAME_BYTES
        )
        deadline = time.monotonic() + self._handshake_timeout
        reason = "closed by peer"
        try:
            while not self._closed.is_set():
                if not handshake_done:
                    sock.settimeout(max(deadline - time.monotonic(), 0.001))
                data = sock.recv(_READ_CHUNK)
                if not data:
                    decoder.finish()
                    break
                for payload in decoder.feed(data):
                    message = self._codec.decode(payload)
                    if not handshake_done:
                        sock.settimeout(None)  # nothing has been written yet: safe to switch
                        refusal = self._handshake(message)
                        if refusal is not None:
                            reason = refusal
                            return
                        handshake_done = True
                    else:
                        self._deliver(message)
        except FrameError as error:
            reason = f"bad input from {self._name}: {error}"
            logger.warning("Closing link: %s", reason)
        except TimeoutError as error:  # the handshake deadline, or TCP_USER_TIMEOUT (ETIMEDOUT)
            if handshake_done:
                reason = f"connection error: {error}"
            else:
                reason = f"no Hello from {self._name} within {self._handshake_timeout:g} s"
                logger.warning("Closing link: %s", reason)
        except OSError as error:
            reason = f"connection error: {error}"
        except pykka.ActorDeadError:
            reason = "the actor this link delivers to has stopped"
        except Exception as error:  # a bug: log it, close only this link
            reason = f"internal error reading from {self._name}: {error!r}"
            logger.exception("Closing link: %s", reason)
        finally:
            self._finish(reason)

    def _handshake(self, message: Any) -> str | None:
        """Check the first frame of an accepted link; returns the refusal reason or None."""
        assert self._check_hello is not None
        reason: str | None
        if not isinstance(message, Hello):
            reason = f"expected Hello as first frame, got {type(message).__name__}"
        else:
            reason = self._check_hello(message)
        if reason is None:
            self._write(HelloAccepted(uuid=self._local_uuid))
            self._manager.tell(LinkUp(link=self.actor_ref, hello=message))
            return None
        logger.error("Refusing link from %s: %s", self._name, reason)
        self._write(HelloRefused(reason=reason))
        return f"refused: {reason}"

    def _deliver(self, message: Any) -> None:
        if isinstance(message, HelloRefused):
            logger.error("Peer %s refused the handshake: %s", self._name, message.reason)
        self._deliver_to.tell(Inbound(message=message, link=self.actor_ref, peer=self._name))

    def _close(self, reason: str) -> None:
        """Close once, for the first reason; frames already queued (a refusal, say) go out first."""
        with self._close_lock:
            if self._closed.is_set():
                return
            self._close_reason = reason
            self._closed.set()
        writer = self._writer
        if writer is not None:
            self._outbox.put(None)
            if writer is not threading.current_thread():
                writer.join(self._io_timeout)
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _finish(self, reason: str) -> None:
        """Runs once when the link ends: tell the manager the first reason, then stop this actor."""
        self._close(reason)
        with contextlib.suppress(pykka.ActorDeadError):
            self._manager.tell(
                LinkClosed(link=self.actor_ref, peer=self._peer, reason=self._close_reason)
            )
        self.actor_ref.stop(block=False)
