"""Authority on the wire, over real TCP: a frame changes a member's fate only when it comes over a
link whose handshake named its sender, a member in good standing; a client changes nothing.

Each test talks to live members through a ``RawLink`` that says ``Hello`` as whoever the test
wants it to be, sends what an attacker would, then a ``Watch`` on the same link: its
``ClientUpdate`` answer proves the member has stepped past the forged frame (a member takes a
link's frames in order), so no test waits for something not to happen.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterator

import msgspec
import pytest
from cluster_helpers import ClusterHarness, RawLink, WatchedNode, fetch_state

from messages.address import Address
from messages.local.routing import GetOrderingStats, OrderingStats
from messages.member import Member, MemberStatus
from messages.membership.protocol import ClientUpdate, Gossip, Join, RemovalNotice, Watch
from messages.membership.state import MembershipState
from messages.messaging.envelope import Ask, Envelope, Failure
from messages.messaging.versions import EMPTY_DIGEST
from messages.wire.handshake import Role


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterHarness]:
    """Three members on 127.0.0.1, up and converged; every test leaves them so."""
    with ClusterHarness() as harness:
        harness.start_many(3)
        harness.wait_all_up()
        harness.wait_converged()
        yield harness


def speak_as(
    harness: ClusterHarness,
    to: WatchedNode,
    role: Role,
    uuid: str | None = None,
    address: Address | None = None,
) -> RawLink:
    """A raw link to ``to`` whose ``Hello`` names ``uuid`` (a made-up one by default)."""
    link = RawLink(to.address)
    link.hello(harness.cluster_name, role, uuid, address)
    return link


def stepped_past(link: RawLink) -> MembershipState:
    """Watch on ``link``: the member has taken every frame sent on it before; its state."""
    link.send(Watch())
    update: ClientUpdate = link.receive(ClientUpdate)
    return update.state


def assert_all_up(harness: ClusterHarness) -> None:
    for node in harness.nodes:
        assert node.is_running, f"{node} stopped"
        state = fetch_state(node.address, harness.cluster_name)
        statuses = {m.uuid: m.status for m in state.members}
        assert statuses == {n.uuid: MemberStatus.UP for n in harness.nodes}, statuses


def test_a_removal_notice_from_a_stranger_stops_nobody(cluster: ClusterHarness) -> None:
    victim = cluster.nodes[1]
    stranger = Address("127.0.0.1", 1)
    with speak_as(cluster, victim, Role.MEMBER, address=stranger) as link:
        link.send(RemovalNotice(to_uuid=victim.uuid, reason="forged"))
        stepped_past(link)
    assert_all_up(cluster)


def test_a_removal_notice_from_a_client_stops_nobody_and_closes_its_link(
    cluster: ClusterHarness,
) -> None:
    victim = cluster.nodes[1]
    with speak_as(cluster, victim, Role.CLIENT) as link:
        link.send(RemovalNotice(to_uuid=victim.uuid, reason="forged"))
        assert link.read_to_eof(), "the member kept the link of a client that tried to remove it"
    assert_all_up(cluster)


def test_a_removal_notice_from_a_member_whose_gossip_keeps_the_receiver_stops_nobody(
    cluster: ClusterHarness,
) -> None:
    """Speaking as a real member (no secret: a Hello names whom it likes; no address, so the
    link replaces no route), with that member's real state attached: the state shows the
    receiver UP, so the notice is a lie."""
    sender, victim = cluster.nodes[0], cluster.nodes[1]
    state = fetch_state(sender.address, cluster.cluster_name)
    with speak_as(cluster, victim, Role.MEMBER, sender.uuid) as link:
        link.send(RemovalNotice(to_uuid=victim.uuid, reason="forged"))
        link.send(RemovalNotice(to_uuid=victim.uuid, reason="forged", state=state))
        stepped_past(link)
    assert_all_up(cluster)


def test_gossip_in_the_leaders_name_over_a_strangers_link_changes_nothing(
    cluster: ClusterHarness,
) -> None:
    """The issue's second attack: the state a client is pushed, the victim marked DOWN in it,
    sent as the leader's gossip over a link whose Hello named a made-up uuid."""
    leader, victim, receiver = cluster.nodes
    with speak_as(cluster, receiver, Role.CLIENT) as watcher:
        pushed = stepped_past(watcher)
    forged = pushed.set_status(victim.uuid, MemberStatus.DOWN, by=leader.uuid)
    for role in (Role.MEMBER, Role.CLIENT):
        with speak_as(cluster, receiver, role, address=Address("127.0.0.1", 2)) as link:
            link.send(Gossip(from_uuid=leader.uuid, to_uuid=receiver.uuid, state=forged))
            if role is Role.MEMBER:
                state = stepped_past(link)
                assert state.member(victim.uuid).status is MemberStatus.UP  # type: ignore[union-attr]
            else:
                assert link.read_to_eof()
    assert_all_up(cluster)


def test_a_client_asking_to_join_has_its_link_closed(cluster: ClusterHarness) -> None:
    seed = cluster.nodes[0]
    client_uuid = str(uuid_module.uuid4())
    with speak_as(cluster, seed, Role.CLIENT, client_uuid) as link:
        link.send(Join(member=Member.create(Address("127.0.0.1", 3), member_uuid=client_uuid)))
        assert link.read_to_eof()
    assert_all_up(cluster)


def test_an_envelope_with_another_senders_name_is_dropped(cluster: ClusterHarness) -> None:
    """A client that writes into a member's ordered stream: its ask names the member as sender
    (the answer would go there). The receiver drops it; the client's own ask after it, in its own
    name, is answered on the link, so the forged one has been through."""
    sender, receiver = cluster.nodes[0], cluster.nodes[1]
    before = delivered(receiver)
    client_uuid = str(uuid_module.uuid4())
    version = EMPTY_DIGEST
    payload = msgspec.Raw(msgspec.msgpack.encode(1))
    with speak_as(cluster, receiver, Role.CLIENT, client_uuid) as link:
        for ask_id, name in ((1, sender.uuid), (2, client_uuid)):
            ask = Ask(to="nobody", kind="int", payload=payload, ask_id=ask_id)
            link.send(Envelope(sender=name, sequence=1, version=version, body=ask))
        answer: Envelope = link.receive(Envelope)
        assert isinstance(answer.body, Failure)
        assert answer.body.ask_id == 2
    assert delivered(receiver) == before + 1
    assert_all_up(cluster)


def delivered(node: WatchedNode) -> int:
    stats: OrderingStats = node.node.ordering.ask(GetOrderingStats(), timeout=5)
    return stats.envelopes_delivered
