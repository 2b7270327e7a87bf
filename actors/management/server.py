"""ManagementServer: the standard library's HTTP server, one thread, every request bounded.

Why ``http.server`` and no dependency: management is a handful of small requests a minute
(probes, scrapes, an operator's command), so one serving thread is plenty, and the standard
library parses HTTP for us (request line, headers) with limits of its own (64 KiB lines, 100
headers). With one thread, no request may hold it for long: reading a request, each ask of
the actors, and writing the answer each end within ``http_timeout`` (a client that sends its
request a byte at a time is cut off at the deadline, not at each byte's timeout), bodies are at
most ``MAX_BODY_BYTES`` with a ``Content-Length``, and each connection carries one request
(HTTP/1.0), so a client cannot keep the thread with keep-alive. Anything a handler raises is
logged and answered 500; the thread keeps serving.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from actors.management.endpoints import Endpoints, HttpError, Response
from messages.address import Address

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MAX_BODY_BYTES", "ManagementServer"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
"""The largest request body taken (a command is a few dozen bytes)."""

_POLL_SECONDS = 0.1  # how soon the idle serving thread sees ``stop`` (a node's stop waits that)


class ManagementServer:
    """Serves ``endpoints`` over HTTP on ``address`` (port 0: any free port; ``address`` then
    names the chosen one) from one thread, until ``stop``. Raises ``OSError`` naming the
    address when it cannot be bound."""

    def __init__(self, address: Address, endpoints: Endpoints, timeout: float) -> None:
        try:
            self._server = _Server(address, endpoints, timeout)
        except OSError as error:
            reason = f"cannot serve HTTP on {address}: {error.strerror}"
            raise OSError(error.errno, reason) from None
        self.address = Address(address.host, self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(_POLL_SECONDS,),
            name=f"http-{self.address}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Management over HTTP at http://%s", self.address)

    def stop(self) -> None:
        """Stop serving (after the request under way, which is bounded) and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _DeadlineSocket(socket.socket):
    """An accepted connection whose reads share one ``deadline``: each read may wait only
    what is left of it."""

    deadline = math.inf

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.settimeout(remaining)
        return super().recv_into(buffer, nbytes, flags)

    def allow(self, seconds: float) -> None:
        """Give the next reads and writes ``seconds`` from now."""
        self.deadline = time.monotonic() + seconds
        self.settimeout(seconds)


class _Server(HTTPServer):
    def __init__(self, address: Address, endpoints: Endpoints, timeout: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.endpoints = endpoints
        self.request_timeout = timeout
        super().__init__((address.host, address.port), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, peer = self.socket.accept()
        connection = _DeadlineSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        connection.allow(self.request_timeout)
        return connection, peer

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("HTTP connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    request: _DeadlineSocket
    protocol_version = "HTTP/1.0"  # one request per connection
    server_version = "membership"

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        try:
            response = self.server.endpoints.handle(self.command, path, self.headers, self._body)
        except Exception:
            logger.exception("HTTP %s %s failed", self.command, path)
            detail = "the member could not answer this request (its log says why)"
            response = HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", detail).response()
        self._send(response)

    def _body(self) -> bytes:
        if "Transfer-Encoding" in self.headers or "Content-Length" not in self.headers:
            detail = "a body needs a Content-Length (no chunked encoding)"
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "length-required", detail)
        length = self.headers["Content-Length"].strip()
        if not length.isdigit():
            detail = f"Content-Length must be a number of bytes, got {length!r:.40}"
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad-length", detail)
        if int(length) > MAX_BODY_BYTES:
            detail = f"a body may have at most {MAX_BODY_BYTES} bytes, this one has {length}"
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body-too-large", detail)
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            detail = "the body did not arrive in time"
            raise HttpError(HTTPStatus.REQUEST_TIMEOUT, "timeout", detail) from None
        if len(body) < int(length):
            detail = "the body ended before its Content-Length"
            raise HttpError(HTTPStatus.BAD_REQUEST, "short-body", detail)
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What ``http.server`` answers a request it cannot parse, or a method no ``do_``
        method takes (501), as JSON like every other refusal."""
        status = HTTPStatus(code)
        error = status.phrase.lower().replace(" ", "-")
        self.close_connection = True
        self._send(HttpError(status, error, message or status.description).response())

    def _send(self, response: Response) -> None:
        self.request.allow(self.server.request_timeout)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
