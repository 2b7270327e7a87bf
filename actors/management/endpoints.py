"""The management endpoints: what each request path answers, apart from HTTP's mechanics.

``GET /cluster/members``, ``GET /health/alive``, ``GET /health/ready``, ``GET /metrics`` and
``PUT /cluster/members/{address}`` with ``{"operation": "leave" | "down"}`` (a bearer token
required). Every answer is a ``Response``; every refusal an ``HttpError`` with a stable
``error`` code and a ``detail`` for people, sent as JSON. Nothing here can raise anything else
for any input: the server answers what it raises as a bug (500), and keeps serving.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac
import json
from collections.abc import Callable
from email.message import Message
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from actors.cli.render import member_rows
from actors.management.view import NodeView, Unavailable
from messages.address import Address
from messages.local.commands import HealthReport
from messages.member import MemberStatus
from messages.membership.effects import DownMember, LeaveMember

__all__ = ["Endpoints", "HttpError", "Operation", "Response", "json_response"]

_MEMBERS = "/cluster/members"
_MEMBER_PREFIX = _MEMBERS + "/"
_GETS = ("/health/alive", "/health/ready", "/metrics", _MEMBERS)


class Operation(enum.Enum):
    """What ``PUT /cluster/members/{address}`` asks of a member."""

    LEAVE = "leave"
    DOWN = "down"


@dataclasses.dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class HttpError(Exception):
    """A request refused: ``status``, a stable ``error`` code, a ``detail`` for people."""

    def __init__(
        self,
        status: HTTPStatus,
        error: str,
        detail: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status.value} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers

    def response(self) -> Response:
        return json_response(
            self.status, {"error": self.error, "detail": self.detail}, self.headers
        )


def json_response(
    status: HTTPStatus, value: Any, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, json.dumps(value).encode(), headers=headers)


class Endpoints:
    """Answers the requests about the member ``view`` shows; ``registry`` holds its metrics;
    ``token``: the bearer token a ``PUT`` must carry (None: every ``PUT`` is refused)."""

    def __init__(self, view: NodeView, registry: CollectorRegistry, token: bytes | None) -> None:
        self._view = view
        self._registry = registry
        self._token = token

    def handle(
        self, method: str, path: str, headers: Message, read_body: Callable[[], bytes]
    ) -> Response:
        """The answer to ``method`` on ``path`` (no query: it is ignored); ``read_body`` reads
        the body, raising ``HttpError`` when it cannot (too large, no length)."""
        try:
            if path in _GETS:
                _allow(method, "GET")
                return self._get(path)
            if path.startswith(_MEMBER_PREFIX):
                _allow(method, "PUT")
                return self._put(unquote(path[len(_MEMBER_PREFIX) :]), headers, read_body)
            raise HttpError(HTTPStatus.NOT_FOUND, "not-found", f"no endpoint at {path}")
        except HttpError as error:
            return error.response()
        except Unavailable as error:
            return HttpError(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", str(error)).response()

    def _get(self, path: str) -> Response:
        match path:
            case "/health/alive":
                self._view.health()  # the membership actor answers
                return json_response(HTTPStatus.OK, {"alive": True})
            case "/health/ready":
                return self._ready(self._view.health())
            case "/metrics":
                body = generate_latest(self._registry)
                return Response(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)
            case _:
                return json_response(HTTPStatus.OK, self._members(self._view.health()))

    def _members(self, health: HealthReport) -> dict[str, Any]:
        state = health.state
        addresses = {member.uuid: str(member.address) for member in state.members}
        return {
            "self": str(self._view.address),
            "self_uuid": self._view.uuid,
            "leader": None if state.leader is None else str(state.leader),
            "converged": health.converged,
            "unreachable": sorted(addresses[u] for u in state.unreachable if u in addresses),
            "members": member_rows(state),
        }

    def _ready(self, health: HealthReport) -> Response:
        me = next((m for m in health.state.members if m.uuid == self._view.uuid), None)
        if not health.joined:
            reason = "this member has not joined a cluster, or is out of it"
        elif me is None or me.status is not MemberStatus.UP:
            reason = f"this member is {'REMOVED' if me is None else me.status.name}, not UP"
        elif not health.converged:
            reason = "this member's view has not converged (not every member has seen it)"
        else:
            return json_response(HTTPStatus.OK, {"ready": True, "status": "UP"})
        body = {"ready": False, "error": "not-ready", "detail": reason}
        return json_response(HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _put(self, target: str, headers: Message, read_body: Callable[[], bytes]) -> Response:
        self._authorize(headers.get("Authorization"))
        operation = _operation(read_body())
        try:
            address = Address.parse(target)
        except ValueError as error:
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad-address", str(error)) from None
        state = self._view.health().state
        member = next((m for m in state.members if m.address == address), None)
        if member is None:
            detail = f"no member at {address} in this member's view"
            raise HttpError(HTTPStatus.BAD_REQUEST, "unknown-address", detail)
        command = LeaveMember(address) if operation is Operation.LEAVE else DownMember(address)
        after = self._view.command(command)
        now = next((m for m in after.members if m.uuid == member.uuid), None)
        body = {
            "address": str(address),
            "uuid": member.uuid,
            "operation": operation.value,
            "status": "REMOVED" if now is None else now.status.name,
        }
        return json_response(HTTPStatus.OK, body)

    def _authorize(self, header: str | None) -> None:
        if self._token is None:
            detail = "no management token is configured on this member: PUT is disabled"
            raise HttpError(HTTPStatus.FORBIDDEN, "no-token-configured", detail)
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise HttpError(
                HTTPStatus.UNAUTHORIZED,
                "unauthorized",
                "PUT needs an 'Authorization: Bearer <token>' header",
                (("WWW-Authenticate", 'Bearer realm="membership"'),),
            )
        # http.server decodes header bytes as latin-1: this gives back the bytes that were sent.
        given = credentials.strip().encode("latin-1", "replace")
        if not hmac.compare_digest(given, self._token):
            raise HttpError(HTTPStatus.FORBIDDEN, "forbidden", "the bearer token is wrong")


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method-not-allowed",
            f"{method} is not allowed here; {allowed} is",
            (("Allow", allowed),),
        )


def _operation(body: bytes) -> Operation:
    """The operation a PUT's JSON body names."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are
        expected = 'expected JSON like {"operation": "leave"}'
        detail = f"the body is not JSON: {expected}"
        raise HttpError(HTTPStatus.BAD_REQUEST, "bad-json", detail) from None
    operation = request.get("operation") if isinstance(request, dict) else None
    try:
        return Operation(operation)
    except ValueError:
        names = " or ".join(repr(o.value) for o in Operation)
        detail = f"operation must be {names}, got {operation!r:.100}"
        raise HttpError(HTTPStatus.BAD_REQUEST, "unknown-operation", detail) from None
