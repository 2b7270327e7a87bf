"""An application actor that asks the load balancer actor which member to use next.

Run: python examples/load_balancer.py
"""

from __future__ import annotations

from typing import Any

import pykka

import actors
from messages import DataMemberSelector, Member, NextMember


class Dispatcher(pykka.ThreadingActor):
    """Picks a member for each job through the node's load balancer (round robin)."""

    def __init__(self, load_balancer: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.load_balancer = load_balancer

    def on_receive(self, message: Any) -> Any:
        member: Member | None = self.load_balancer.ask(
            NextMember(selector=DataMemberSelector()), block=True, timeout=5
        )
        return f"job {message} -> {member.address if member else 'nobody'}"


def main() -> None:
    with actors.start_member(cluster_name="example", port=0, attributes={"zone": "a"}) as node:
        dispatcher = Dispatcher.start(node.load_balancer)
        for job in range(3):
            print(dispatcher.ask(job, timeout=5))
        balancer = actors.RoundRobinLoadBalancer(node.cluster)
        print("facade next:", balancer.next_address())
        balancer.shutdown()
        dispatcher.stop()


if __name__ == "__main__":
    main()
