"""Local commands refuse a field of the wrong kind when built, in the sender's thread, so that a
bad one never reaches (and stops) the actor it is told to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka
import pytest

from messages.commands import AttachTransport, WaitUntil
from messages.routing import UnsubscribeTopic


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: AttachTransport("transport"), "transport must be a pykka ActorRef"),
        (lambda: WaitUntil(None, pykka.ThreadingFuture()), "predicate must be callable"),
        (lambda: WaitUntil(bool, "done"), "done must be a pykka Future"),
        (lambda: UnsubscribeTopic("news", "actor"), "actor must be a pykka ActorRef"),
    ],
)
def test_a_field_of_the_wrong_kind_is_refused_when_built(
    build: Callable[[], Any], text: str
) -> None:
    with pytest.raises(TypeError, match=text):
        build()
