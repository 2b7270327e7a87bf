"""The I/O layer: one thread (``loop``) serves every socket and timer of a node. It owns its parts:
the table of links (``table``, each link's state and lanes in ``link``), the accepting and dialling
sides (``accept``, ``dial``) and its timers; the transport actor (``actor``) owns the handshake
policy and which link carries what.
"""

__all__: list[str] = []
