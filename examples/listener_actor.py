"""A listener actor subscribed to membership topics (event types), in a one-member cluster.

Run: python examples/listener_actor.py
"""

from __future__ import annotations

import threading
from typing import Any

import pykka

import actors
from messages import ClusterEvent, InitialState, MemberRemoved, MemberUp, Subscribe


class MembershipPrinter(pykka.ThreadingActor):
    """Prints every MemberUp and MemberRemoved it is told; sets ``removed`` on the first removal."""

    def __init__(self, removed: threading.Event) -> None:
        super().__init__()
        self.removed = removed

    def on_receive(self, message: Any) -> Any:
        match message:
            case MemberUp(member=member) | MemberRemoved(member=member):
                print(f"{type(message).__name__}: {member.address} ({member.uuid[:8]})")
            case ClusterEvent():
                pass
        if isinstance(message, MemberRemoved):
            self.removed.set()
        return None


def main() -> None:
    node = actors.start_member(cluster_name="example", host="127.0.0.1", port=0)
    removed = threading.Event()
    printer = MembershipPrinter.start(removed)
    node.listeners.ask(
        Subscribe(
            subscriber=printer, events=(MemberUp, MemberRemoved), initial_state=InitialState.EVENTS
        )
    )
    print("members:", [str(m.address) for m in node.cluster.get_members()])
    node.leave()
    if not removed.wait(10):
        raise SystemExit("no MemberRemoved seen")
    printer.stop()


if __name__ == "__main__":
    main()
