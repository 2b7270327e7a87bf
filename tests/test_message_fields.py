"""Local commands refuse a field of the wrong kind when built, in the sender's thread, so that a
bad one never reaches (and stops) the actor it is told to."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from typing import Any

import pytest

import messages
from messages.local.commands import Listen, UnwatchEvents, WatchEvents
from messages.local.routing import UnsubscribeTopic


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: Listen("ordering"), "deliver_to must be a pykka ActorRef"),
        (lambda: WatchEvents("watcher"), "watcher must be a pykka ActorRef"),
        (lambda: UnwatchEvents(None), "watcher must be a pykka ActorRef"),
        (lambda: UnsubscribeTopic("news", "actor"), "actor must be a pykka ActorRef"),
    ],
)
def test_a_field_of_the_wrong_kind_is_refused_when_built(
    build: Callable[[], Any], text: str
) -> None:
    with pytest.raises(TypeError, match=text):
        build()


def message_fields() -> list[tuple[str, str]]:
    """(``module.Class.field``, annotation) of every class field in ``messages``."""
    fields = []
    for info in pkgutil.walk_packages(messages.__path__, "messages."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == info.name:
                for name, annotation in inspect.get_annotations(cls).items():
                    fields.append((f"{info.name}.{cls.__name__}.{name}", str(annotation)))
    return fields


def test_no_message_carries_a_future_or_a_socket() -> None:
    """Actors answer by message (or an ask's reply), not through a future shared in a message;
    the one exception is the reply channel of a blocking remote ask."""
    allowed = {"messages.local.routing.RemoteAsk.reply_to"}
    fields = message_fields()

    assert len(fields) > 100
    assert [
        (name, annotation)
        for name, annotation in fields
        if re.search(r"Future|socket", annotation) and name not in allowed
    ] == []
