"""Hazelcast Python client 3.x tests of its cluster service, lifecycle and addresses, ported.

Each test keeps the assertions of the Hazelcast test it is named after (``tests/cluster_test.py``,
``tests/lifecycle_test.py``, ``tests/address_test.py`` at v3.12.3), against real members on
127.0.0.1; docs/hazelcast.md lists every difference of the API.
"""

from __future__ import annotations

import pytest
from cluster_helpers import ClusterHarness, Received, WatchedNode

import actors
from actors.client import Client, member_addresses
from messages import Address, Member, MemberStatus
from messages.events import LifecycleState


def explode(_: object) -> None:
    raise RuntimeError("error")


def client_of(harness: ClusterHarness, *members: WatchedNode, **listeners: object) -> Client:
    addresses = [member.address for member in members]
    return actors.start_client(
        members=addresses,
        **listeners,  # type: ignore[arg-type]
        settings=harness.settings,
    )


def same_member(member: object, node: WatchedNode) -> None:
    assert isinstance(member, Member)
    assert (member.uuid, member.address) == (node.uuid, node.address)


# tests/cluster_test.py


def test_initial_membership_listener(harness: ClusterHarness) -> None:
    events = Received()
    member = harness.start()

    with client_of(harness, member, membership_listeners=[(events, None)]):
        assert len(events.messages) == 1
        same_member(events.messages[0], member)


def test_for_existing_members(harness: ClusterHarness) -> None:
    events = Received()
    member = harness.start()

    with client_of(harness, member) as client:
        client.cluster.add_listener(events, fire_for_existing=True)

        assert len(events.messages) == 1
        same_member(events.messages[0], member)


@pytest.mark.timeout(30)
def test_member_added(harness: ClusterHarness) -> None:
    events = Received()
    member = harness.start()
    with client_of(harness, member) as client:
        client.cluster.add_listener(events, fire_for_existing=True)

        new_member = harness.start()

        assert len(events.wait_count(2)) == 2
        same_member(events.messages[1], new_member)


@pytest.mark.timeout(30)
def test_member_removed(harness: ClusterHarness) -> None:
    events = Received()
    first, member_to_remove = harness.start(), harness.start()
    harness.wait_all_up()
    with client_of(harness, first) as client:
        client.cluster.add_listener(member_removed=events)

        member_to_remove.node.leave()  # Hazelcast's member.shutdown() is graceful

        assert len(events.wait_count(1)) == 1
        same_member(events.messages[0], member_to_remove)


def test_exception_in_membership_listener(harness: ClusterHarness) -> None:
    member = harness.start()
    with client_of(harness, member, membership_listeners=[(explode, explode)]) as client:
        assert client.connected


def test_cluster_service_get_members_by_property(harness: ClusterHarness) -> None:
    member = harness.start()
    with client_of(harness, member) as client:
        assert len(client.cluster.members) == 1


def test_cluster_service_cant_set_members(harness: ClusterHarness) -> None:
    member = harness.start()
    with client_of(harness, member) as client, pytest.raises(AttributeError):
        client.cluster.members = []  # type: ignore[misc]


# tests/lifecycle_test.py


def test_lifecycle_listener(harness: ClusterHarness) -> None:
    collector = Received()
    member = harness.start()
    client = client_of(harness, member, lifecycle_listeners=[collector])
    client.stop()

    assert collector.messages == [
        LifecycleState.STARTING,
        LifecycleState.CONNECTED,
        LifecycleState.SHUTTING_DOWN,
        LifecycleState.SHUTDOWN,
    ]
    assert collector.messages == ["STARTING", "CONNECTED", "SHUTTING_DOWN", "SHUTDOWN"]


@pytest.mark.timeout(30)
def test_lifecycle_listener_disconnected(harness: ClusterHarness) -> None:
    collector = Received()
    member = harness.start()
    with client_of(harness, member) as client:
        client.lifecycle.add_listener(collector)

        member.node.stop()

        assert collector.wait_count(1) == [LifecycleState.DISCONNECTED]


def test_remove_lifecycle_listener(harness: ClusterHarness) -> None:
    collector = Received()
    member = harness.start()
    client = client_of(harness, member)
    registration_id = client.lifecycle.add_listener(collector)
    assert client.lifecycle.remove_listener(registration_id) is True
    assert client.lifecycle.remove_listener(registration_id) is False
    client.stop()

    assert collector.messages == []


def test_exception_in_lifecycle_listener(harness: ClusterHarness) -> None:
    member = harness.start()
    with client_of(harness, member, lifecycle_listeners=[explode]) as client:
        assert client.connected


# tests/address_test.py (the address provider's part)


def test_single_given_address_with_no_port() -> None:
    assert member_addresses(["127.0.0.1"]) == tuple(
        Address("127.0.0.1", port) for port in (5701, 5702, 5703)
    )


def test_single_address_and_port() -> None:
    assert member_addresses(["127.0.0.1:5701"]) == (Address("127.0.0.1", 5701),)


def test_multiple_addresses() -> None:
    assert set(member_addresses(["127.0.0.1:5701", "10.0.0.1"])) == {
        Address("127.0.0.1", 5701),
        Address("10.0.0.1", 5701),
        Address("10.0.0.1", 5702),
        Address("10.0.0.1", 5703),
    }


def test_multiple_addresses_non_unique() -> None:
    assert member_addresses(["127.0.0.1:5701", "127.0.0.1:5701"]) == (Address("127.0.0.1", 5701),)


# hazelcast/core.py: Member and Address as values


def test_member_and_address_have_the_hazelcast_fields_and_forms() -> None:
    address = Address("127.0.0.1", 5701)
    member = Member.create(address, {"zone": "a"}, lite_member=True, member_uuid="uuid1")

    assert (member.address, member.uuid, member.is_lite_member) == (address, "uuid1", True)
    assert member.attributes == {"zone": "a"}
    assert str(member) == "Member [127.0.0.1]:5701 - uuid1 lite JOINING"
    assert address == Address("127.0.0.1", 5701)
    assert hash(address) == hash(Address("127.0.0.1", 5701))
    assert {address: 1}[Address("127.0.0.1", 5701)] == 1
    up = member.with_status(MemberStatus.UP, up_number=1)
    assert up != member  # a value: another status is another value ...
    assert up.uuid == member.uuid  # ... of the same incarnation
