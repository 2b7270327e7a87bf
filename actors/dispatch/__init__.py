"""Dispatched pykka actors: many mailboxes run by one shared dispatcher thread."""
