"""A member process whose links a test can cut, for the real-process partition tests.

Run as ``python tests/faulty_member.py CLUSTER PORT DOWN_AFTER [SEED ...]``: a member on
127.0.0.1:PORT with the fast test timings but ``down_after`` (seconds) and the fault-injecting
transport (``support.faulty_transport``). It
prints ``ready`` once it has joined, then takes commands on stdin, one per line:

- ``block HOST:PORT ...``: drop every send to those members (``block`` alone lifts the block);
- ``view``: print its view as one JSON line, ``{"members": {address: status}, "unreachable":
  [address, ...]}``.

It exits when the node stops, with the CLI's exit code (3 when the cluster downed or removed
it), or leaves when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading

from support.faulty_transport import BlockPeers, FaultyTransport

from actors.cli.main import EXIT_CODES
from actors.node import Node
from messages.address import Address
from messages.events import CurrentClusterState
from messages.local.commands import GetClusterState
from messages.member import Member
from messages.settings import Settings


def view(node: Node) -> str:
    state: CurrentClusterState = node.membership.ask(GetClusterState(), timeout=10)
    by_uuid = {member.uuid: str(member.address) for member in state.members}
    return json.dumps(
        {
            "members": {str(m.address): m.status.name for m in state.members},
            "unreachable": sorted(by_uuid[u] for u in state.unreachable if u in by_uuid),
        }
    )


def serve(node: Node) -> None:
    """Carry out stdin's commands until it closes; then leave."""
    for line in sys.stdin:
        command, *arguments = line.split()
        if command == "block":
            node.transport.tell(BlockPeers(frozenset(map(Address.parse, arguments))))
        elif command == "view":
            print(view(node), flush=True)
    node.leave(timeout=10)


def main(argv: list[str]) -> int:
    cluster, port, down_after, *seeds = argv
    node = Node(
        Member.create(Address("127.0.0.1", int(port))),
        Settings.fast_test(cluster_name=cluster, down_after=float(down_after)),
        tuple(map(Address.parse, seeds)),
        transport=FaultyTransport,
    )
    print("ready", flush=True)
    threading.Thread(target=serve, args=(node,), name="stdin", daemon=True).start()
    node.wait_stopped()
    termination = node.termination
    assert termination is not None
    return EXIT_CODES[termination.kind]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
