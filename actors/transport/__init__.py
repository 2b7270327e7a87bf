"""The I/O layer: one thread (``loop``) serves every socket and timer of a node. It owns its parts:
the table of links (``table``, each link's state and lanes in ``link``), the accepting and dialling
sides (``accept``, ``dial``), its timers, and, on a TLS node, each link's TLS layer under its
frames (``tls``); the transport actor (``actor``) owns the handshake
policy and which link carries what.
"""

__all__: list[str] = []
