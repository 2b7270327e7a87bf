"""The I/O layer: one thread (``loop``) serves every socket and timer of a node; its links
(``link``, ``core``), the accepting and dialling sides (``accept``, ``dial``), its timers, and the
transport actor (``actor``) that owns the handshake policy and which link carries what.
"""

__all__: list[str] = []
