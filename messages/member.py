"""Members, their lifecycle status, and member selectors."""

from __future__ import annotations

import enum
import uuid as uuid_module
from collections.abc import Callable, Mapping
from typing import Annotated, Protocol, runtime_checkable

import msgspec

from messages.address import Address
from messages.limits import (
    MAX_ATTRIBUTE_KEY_LENGTH,
    MAX_ATTRIBUTE_VALUE_LENGTH,
    MAX_ATTRIBUTES,
    Counter,
    MemberId,
)

__all__ = [
    "AttributeItems",
    "DataMemberSelector",
    "LiteMemberSelector",
    "Member",
    "MemberFilter",
    "MemberSelector",
    "MemberStatus",
    "SelectorLike",
    "as_predicate",
    "check_member_filter",
    "filter_members",
    "select_members",
]

AttributeItems = Annotated[
    tuple[
        tuple[
            Annotated[str, msgspec.Meta(max_length=MAX_ATTRIBUTE_KEY_LENGTH)],
            Annotated[str, msgspec.Meta(max_length=MAX_ATTRIBUTE_VALUE_LENGTH)],
        ],
        ...,
    ],
    msgspec.Meta(max_length=MAX_ATTRIBUTES),
]


class MemberStatus(enum.IntEnum):
    """Lifecycle status. The integer order is the merge precedence: a higher one wins."""

    JOINING = 0
    UP = 1
    LEAVING = 2
    EXITING = 3
    DOWN = 4
    REMOVED = 5


class Member(msgspec.Struct, frozen=True):
    """One incarnation of a cluster member.

    Identity is ``uuid`` (new at every process start); ``up_number`` is 0 until the leader moves the
    member to UP and then gives its age order (smaller is older). Attributes are stored as sorted
    pairs so that the value stays immutable; ``attributes`` returns them as a fresh dict.
    """

    uuid: MemberId
    address: Address
    status: MemberStatus = MemberStatus.JOINING
    up_number: Counter = 0
    lite_member: bool = False
    attribute_items: AttributeItems = ()

    @classmethod
    def create(
        cls,
        address: Address | str,
        attributes: Mapping[str, str] | None = None,
        lite_member: bool = False,
        member_uuid: str | None = None,
    ) -> Member:
        """A new JOINING incarnation at ``address`` with a fresh uuid."""
        items = tuple(sorted((attributes or {}).items()))
        for key, value in items:
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"Member attributes must map str to str, got {key!r}: {value!r}")
        return cls(
            uuid=member_uuid or str(uuid_module.uuid4()),
            address=Address.parse(address),
            lite_member=lite_member,
            attribute_items=items,
        )

    @property
    def attributes(self) -> dict[str, str]:
        return dict(self.attribute_items)

    @property
    def is_lite_member(self) -> bool:
        return self.lite_member

    def with_status(self, status: MemberStatus, up_number: int | None = None) -> Member:
        """A copy with another status (and, when given, up_number)."""
        return msgspec.structs.replace(
            self, status=status, up_number=self.up_number if up_number is None else up_number
        )

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __str__(self) -> str:
        """Hazelcast's form, ``Member [host]:port - uuid``, then ``lite`` and the status."""
        lite = " lite" if self.lite_member else ""
        address = self.address
        return f"Member [{address.host}]:{address.port} - {self.uuid}{lite} {self.status.name}"


@runtime_checkable
class MemberSelector(Protocol):
    """Chooses members (Hazelcast's ``MemberSelector``)."""

    def select(self, member: Member) -> bool: ...


class DataMemberSelector(msgspec.Struct, frozen=True):
    """Selects data (non-lite) members. A value: a message may carry it (see ``MemberFilter``)."""

    def select(self, member: Member) -> bool:
        return not member.lite_member


class LiteMemberSelector(msgspec.Struct, frozen=True):
    """Selects lite members. A value: a message may carry it (see ``MemberFilter``)."""

    def select(self, member: Member) -> bool:
        return member.lite_member


SelectorLike = MemberSelector | Callable[[Member], bool] | None

MemberFilter = DataMemberSelector | LiteMemberSelector
"""The selectors a message may carry: values whose ``select`` is this module's own code.

An actor never runs a caller's function: one that raises would stop an actor told the message,
and one that hangs would hang it. Any other selector runs in the caller's thread: the facades
(``ClusterService.get_members(selector)``) do that, or ``select_members`` on an actor's reply.
"""

_MEMBER_FILTERS = (DataMemberSelector, LiteMemberSelector)


def check_member_filter(selector: object) -> None:
    """Raise TypeError unless ``selector`` is None or exactly a ``MemberFilter`` type (a subclass
    could override ``select`` with code of its own)."""
    if selector is None or type(selector) in _MEMBER_FILTERS:
        return
    raise TypeError(
        f"selector in a message must be None, DataMemberSelector() or LiteMemberSelector(), "
        f"not {type(selector).__name__}: an actor never runs a caller's function (one that raised "
        f"or hung would stop or hang the actor). Select in your own thread instead: "
        f"select_members(members, selector) on the reply of GetMembers(), or "
        f"ClusterService.get_members(selector)"
    )


def as_predicate(selector: SelectorLike) -> Callable[[Member], bool] | None:
    """Normalise a selector object, a plain callable or None into a predicate (None = all)."""
    if selector is None:
        return None
    if isinstance(selector, MemberSelector):
        return selector.select
    if callable(selector):
        return selector
    raise TypeError(
        f"selector must have a select(member) method or be callable, not {type(selector).__name__}"
    )


def select_members(members: tuple[Member, ...], selector: SelectorLike) -> tuple[Member, ...]:
    """Members that the selector accepts, order kept.

    It calls ``selector``, so it belongs in the caller's thread when the selector may be anyone's
    code; an actor applies the selector of a message, a ``MemberFilter``, with ``filter_members``.
    An exception from the selector propagates unchanged.
    """
    predicate = as_predicate(selector)
    if predicate is None:
        return members
    return tuple(m for m in members if predicate(m))


def filter_members(
    members: tuple[Member, ...], member_filter: MemberFilter | None
) -> tuple[Member, ...]:
    """The members ``member_filter`` accepts, order kept: ``select_members`` for actors, which
    refuses (TypeError) anything but a ``MemberFilter`` instead of calling it."""
    check_member_filter(member_filter)
    return select_members(members, member_filter)
