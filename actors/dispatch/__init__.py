"""Dispatched pykka actors: many mailboxes run by one shared thread (its own, or an I/O loop's)."""

__all__: list[str] = []
