"""The handshake's pure rules: which Hello a member accepts, which of two crossed links stays."""

from __future__ import annotations

import itertools

from messages.address import Address
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.handshake import Hello, Role, check_hello, keeps_dialled_link

SETTINGS = Settings(cluster_name="shop")


def hello(cluster_name: str = "shop", version: int = PROTOCOL_VERSION) -> Hello:
    return Hello(cluster_name, version, "u1", Role.MEMBER, Address("127.0.0.1", 5702))


def test_a_hello_of_the_same_cluster_and_protocol_is_accepted() -> None:
    assert check_hello(SETTINGS, hello()) is None


def test_another_cluster_or_protocol_is_refused_naming_both_sides() -> None:
    refusal = check_hello(SETTINGS, hello(cluster_name="bank"))
    assert refusal is not None
    assert "cluster name mismatch" in refusal
    assert "'shop'" in refusal
    assert "'bank'" in refusal
    refusal = check_hello(SETTINGS, hello(version=PROTOCOL_VERSION + 1))
    assert refusal is not None
    assert "protocol version mismatch" in refusal


def test_of_two_crossed_links_both_ends_keep_the_same_one() -> None:
    addresses = [Address("127.0.0.1", 5701), Address("127.0.0.1", 5702), Address("10.0.0.1", 1)]
    for one, other in itertools.permutations(addresses, 2):
        # Exactly one end keeps the link it dialled; the other takes that same link.
        assert keeps_dialled_link(one, other) != keeps_dialled_link(other, one)
    assert keeps_dialled_link(addresses[0], addresses[1])
