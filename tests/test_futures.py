"""OneShot (actors.messaging.futures): the future a blocking direct ask waits on."""

from __future__ import annotations

import threading

import pykka
import pytest

from actors.messaging.futures import OneShot, fail, settle
from messages.wire.remote import MemberGone

TIMEOUT = 10.0


def test_get_waits_for_the_set_of_another_thread() -> None:
    future = OneShot()
    setter = threading.Timer(0.01, settle, (future, "answer"))
    setter.start()
    assert future.get(timeout=TIMEOUT) == "answer"
    assert future.get(timeout=0) == "answer"  # set for good
    setter.join()


def test_it_is_set_once_and_the_first_outcome_stays() -> None:
    future = OneShot()
    assert settle(future, 1)
    assert not settle(future, 2)
    assert not fail(future, MemberGone("late"))
    assert future.get(timeout=TIMEOUT) == 1


def test_a_failure_is_raised_by_get() -> None:
    future = OneShot()
    assert fail(future, MemberGone("gone"))
    assert not settle(future, 1)
    with pytest.raises(MemberGone, match="gone"):
        future.get(timeout=TIMEOUT)


def test_get_times_out_with_pykkas_timeout_and_can_wait_again() -> None:
    future = OneShot()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.01)
    settle(future, "late")
    assert future.get(timeout=TIMEOUT) == "late"
