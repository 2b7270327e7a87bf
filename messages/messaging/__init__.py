"""Cluster messaging, pure: the envelope on the wire, per-sender delivery order, causal order of
publishes, load-balancing strategies.
"""

__all__: list[str] = []
