"""The actors of a pykka-membership node and the public facade.

``start_member`` and ``start_client`` are the entry points; ``ClusterService`` is the
Hazelcast-style API they expose as ``.cluster``.
"""

from actors.client import Client, start_client
from actors.listeners.cluster_service import ClusterService
from actors.listeners.load_balancer import (
    LoadBalancerActor,
    RandomLoadBalancer,
    RoundRobinLoadBalancer,
)
from actors.listeners.recorder import EventRecorder, record_events, wait_until
from actors.listeners.registry import ListenerRegistryActor
from actors.membership import MembershipActor
from actors.messaging.ordering import OrderingActor
from actors.node import Node, start_member
from actors.supervisor import JoinRefusedError, JoinTimeoutError
from messages.settings import Settings

__all__ = [
    "Client",
    "ClusterService",
    "EventRecorder",
    "JoinRefusedError",
    "JoinTimeoutError",
    "ListenerRegistryActor",
    "LoadBalancerActor",
    "MembershipActor",
    "Node",
    "OrderingActor",
    "RandomLoadBalancer",
    "RoundRobinLoadBalancer",
    "Settings",
    "record_events",
    "start_client",
    "start_member",
    "wait_until",
]
