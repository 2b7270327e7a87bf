"""pykka-membership: cluster membership and messaging for pykka actors.

What users call is listed in ``__all__``: ``start_member`` and ``start_client`` are the entry
points, returning a ``Node`` or a ``Client``; ``ClusterService`` is the Hazelcast-style API they
expose as ``.cluster``; ``Settings`` configures them; the errors are what they raise. The actors
themselves live in the subpackages and are reached through a node's refs, not imported.
"""

from actors.client import Client, start_client
from actors.discovery import DnsSeeds
from actors.listeners.cluster_service import ClusterService
from actors.listeners.load_balancer import RandomLoadBalancer, RoundRobinLoadBalancer
from actors.listeners.recorder import EventRecorder, record_events, wait_until
from actors.node import Node, start_member
from actors.supervisor import JoinRefusedError, JoinTimeoutError
from actors.transport.tls import TlsConfig
from messages.settings import Settings
from messages.wire.remote import (
    Backpressure,
    MemberGone,
    MessageTooLarge,
    NoMemberAvailable,
    NoSuchActor,
    RemoteActorFailed,
    RemoteError,
    RemoteTimeout,
    UnknownMessageType,
)

__all__ = [
    "Backpressure",
    "Client",
    "ClusterService",
    "DnsSeeds",
    "EventRecorder",
    "JoinRefusedError",
    "JoinTimeoutError",
    "MemberGone",
    "MessageTooLarge",
    "NoMemberAvailable",
    "NoSuchActor",
    "Node",
    "RandomLoadBalancer",
    "RemoteActorFailed",
    "RemoteError",
    "RemoteTimeout",
    "RoundRobinLoadBalancer",
    "Settings",
    "TlsConfig",
    "UnknownMessageType",
    "record_events",
    "start_client",
    "start_member",
    "wait_until",
]
