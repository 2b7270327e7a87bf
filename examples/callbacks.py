"""Hazelcast-style callbacks: member_added / member_removed on a three-member cluster.

Run: python examples/callbacks.py
"""

from __future__ import annotations

import threading

import actors
from messages import Member


def main() -> None:
    seed = actors.start_member(cluster_name="example", port=0)
    three_up = threading.Event()
    gone = threading.Event()
    seen: list[str] = []

    def member_added(member: Member) -> None:
        seen.append(str(member.address))
        print("added:", member)
        if len(seen) == 3:
            three_up.set()

    def member_removed(member: Member) -> None:
        print("removed:", member)
        gone.set()

    registration = seed.cluster.add_listener(member_added, member_removed, fire_for_existing=True)
    others = [
        actors.start_member(
            cluster_name="example", port=0, seeds=[str(seed.address)], gossip_interval=0.2
        )
        for _ in range(2)
    ]
    if not three_up.wait(15):
        raise SystemExit("the cluster did not reach three members")
    print("size:", seed.cluster.size(), "oldest:", seed.cluster.get_member_list()[0].address)
    others[0].leave()
    if not gone.wait(15):
        raise SystemExit("no member_removed seen")
    print("removed listener:", seed.cluster.remove_listener(registration))
    for node in (others[1], seed):
        node.stop()


if __name__ == "__main__":
    main()
