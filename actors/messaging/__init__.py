"""Cluster messaging: the router (``RemoteTell``/``RemoteAsk`` between members' actors), the
ordering actor (per-sender FIFO, causal publishes), references to remote actors, flow control.
"""

__all__: list[str] = []
