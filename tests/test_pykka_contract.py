"""The pykka internals this project relies on, pinned (pyproject.toml bounds pykka below 5).

``actors.messaging.ordering`` gives its actor an inbox of its own through
``Actor._create_actor_inbox`` and sorts what pykka puts in it by the envelope's ``message``;
``actors.messaging.outcomes.ask_without_waiting`` puts an envelope with a ``reply_to`` that pykka's
loop settles by ``set``/``set_exception``. If a pykka release changes any of these, this module
fails first and says which.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pytest

from actors.messaging.outcomes import ask_without_waiting

TIMEOUT = 10.0


class _RecordingInbox(queue.Queue[Any]):
    """An inbox that keeps what pykka put in it."""

    items: list[Any]

    def _put(self, item: Any) -> None:
        type(self).items.append(item)
        super()._put(item)


class _Echo(pykka.ThreadingActor):
    @staticmethod
    def _create_actor_inbox() -> Any:
        return _RecordingInbox()

    def on_receive(self, message: Any) -> Any:
        if message == "fail":
            raise ValueError("asked to fail")
        return message


@pytest.fixture
def echo() -> Any:
    _RecordingInbox.items = []
    ref = _Echo.start()
    yield ref
    ref.stop()


def test_an_actor_inbox_comes_from_create_actor_inbox_and_holds_envelopes(echo: Any) -> None:
    assert echo.ask("ping", timeout=TIMEOUT) == "ping"

    (envelope,) = [
        item for item in _RecordingInbox.items if getattr(item, "message", None) == "ping"
    ]
    assert isinstance(envelope.reply_to, pykka.Future)


def test_the_loop_settles_a_reply_to_by_set_and_set_exception(echo: Any) -> None:
    outcomes: list[tuple[Any, BaseException | None]] = []
    done = threading.Semaphore(0)

    def answer(value: Any, error: BaseException | None) -> None:
        outcomes.append((value, error))
        done.release()

    ask_without_waiting(echo, "hello", answer)
    ask_without_waiting(echo, "fail", answer)

    assert done.acquire(timeout=TIMEOUT)
    assert done.acquire(timeout=TIMEOUT)
    assert outcomes[0] == ("hello", None)
    assert outcomes[1][0] is None
    assert isinstance(outcomes[1][1], ValueError)
