"""Dispatched pykka actors: many mailboxes run by one shared dispatcher thread."""

__all__: list[str] = []
