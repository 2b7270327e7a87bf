"""Bounds on what a wire message may hold, checked by msgspec while it decodes.

Each bound is far above what an honest cluster sends and low enough that a forged message cannot
make a node do unbounded work. They are ``Annotated`` field types: the decoder enforces them, a
value built in-process is not checked (the core never builds one that breaks them).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_KEY_LENGTH",
    "MAX_ATTRIBUTE_VALUE_LENGTH",
    "MAX_HOST_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_MEMBERS",
    "MAX_NAME_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_TOMBSTONES",
    "Counter",
    "MemberId",
    "Reason",
]

MAX_ID_LENGTH = 64
"""A member or client id: a uuid4 string has 36 characters."""

MAX_HOST_LENGTH = 255
"""A host name or address literal (DNS names have at most 253 characters)."""

MAX_NAME_LENGTH = 255
"""A cluster name."""

MAX_MEMBERS = 10_000
"""Members (and clock entries, seen uuids, reachability rows) of one state: 100x the cluster sizes
this library is built for, and below the point where one forged state costs seconds to merge."""

MAX_TOMBSTONES = 100_000
"""Removed uuids remembered for ``tombstone_ttl`` (a day by default):
a restart a second for a day."""

MAX_ATTRIBUTES = 64
"""Attributes of one member."""

MAX_ATTRIBUTE_KEY_LENGTH = 255
MAX_ATTRIBUTE_VALUE_LENGTH = 4096
MAX_REASON_LENGTH = 4096
"""A human-readable reason (refusals, removal notices)."""

MemberId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Counter = Annotated[int, msgspec.Meta(ge=0)]
Reason = Annotated[str, msgspec.Meta(max_length=MAX_REASON_LENGTH)]
