"""``LifecycleService``: a client's Hazelcast-style lifecycle listeners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.listeners.cluster_service import ClusterService
from messages.events import LifecycleState
from messages.local.commands import AddLifecycleListener

__all__ = [
    "LifecycleService",
]


class LifecycleService:
    """``client.lifecycle``: functions called with each ``LifecycleState`` the client goes
    through (``CONNECTED`` when it has a member, ``DISCONNECTED`` when it loses it), on the same
    callback runner as membership listeners. Listener actors subscribe to ``ClientConnected`` and
    ``ClientDisconnected`` instead.
    """

    def __init__(self, cluster_service: ClusterService) -> None:
        self._cluster_service = cluster_service

    def add_listener(self, on_lifecycle_change: Callable[[LifecycleState], Any]) -> str:
        """Call ``on_lifecycle_change(state)`` at each change; returns the registration id."""
        registration_id: str = self._cluster_service.ask_registry(
            AddLifecycleListener(on_lifecycle_change)
        )
        return registration_id

    def remove_listener(self, registration_id: str) -> bool:
        """Remove a lifecycle listener: True the first time, then False."""
        return self._cluster_service.remove_listener(registration_id)
