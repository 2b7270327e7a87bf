"""A ``Link`` on a socket of the test's own, with no loop and no actors behind it."""

from __future__ import annotations

import socket
from typing import Any, cast

import pykka

from actors.transport.link import Link
from messages.wire.framing import FrameDecoder


def bare_link(sock: socket.socket) -> Link:
    """A plain link on ``sock`` whose actors are nobody (the functions under test never tell
    them anything)."""
    nobody = cast("pykka.ActorRef[Any]", object())
    return Link(
        1,
        sock,
        "peer",
        peer=None,
        source=None,
        deliver_to=nobody,
        manager=nobody,
        decoder=FrameDecoder(),
        check_hello=None,
        idle_close=False,
    )
