"""Seeds from DNS: a name's A/AAAA or SRV records, looked up in a thread of their own.

``DnsSeeds`` says where: ``NAME:PORT`` is the A and AAAA records of NAME, each at PORT; a bare
``NAME`` is first the SRV records ``_membership._tcp.NAME`` (a Kubernetes headless service
publishes them for a port named ``membership``), each target at its own port, and where there are
none, the A and AAAA records of NAME at 5701; a NAME that starts with ``_`` is taken as an SRV
name itself. ``SeedFinder`` looks the name up while its member joins and tells the membership
actor each new set (``SeedsFound``): a lookup waits on the network, which neither the I/O thread
nor an actor may do.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from typing import Any

import pykka

from messages.address import Address
from messages.membership.effects import SeedsFound
from messages.settings import Settings

__all__ = ["DnsSeeds", "LookupFailure", "SeedFinder", "SeedLookupError"]

logger = logging.getLogger(__name__)

SRV_PREFIX = "_membership._tcp."
"""Prepended to a bare name for its SRV lookup: the service ``membership`` over TCP."""

DNS_PORT = 53


class LookupFailure(enum.Enum):
    """Why a lookup gave no seed."""

    NO_SUCH_NAME = "no-such-name"  # NXDOMAIN
    NO_RECORDS = "no-records"  # the name exists, with no record of the types asked
    TIMEOUT = "timeout"  # no answer within ``seed_dns_timeout``
    FAILED = "failed"  # no server answered usefully (refused, SERVFAIL, unreachable, no config)


class SeedLookupError(Exception):
    """A DNS lookup of seeds gave none: ``failure`` says why, ``name`` what was looked up."""

    def __init__(self, name: str, failure: LookupFailure, detail: str) -> None:
        super().__init__(f"DNS lookup of {name}: {failure.value} ({detail})")
        self.name = name
        self.failure = failure


@dataclasses.dataclass(frozen=True)
class DnsSeeds:
    """A DNS name whose records are seeds, and the servers to ask (none: the system's resolver
    configuration, /etc/resolv.conf, with its search domains). ``port`` None: SRV first."""

    name: str
    port: int | None = None
    nameservers: tuple[Address, ...] = ()

    def __post_init__(self) -> None:
        import dns.exception  # here, not at the top: a member without DNS seeds never loads it
        import dns.name

        try:
            dns.name.from_text(self.name)
        except dns.exception.DNSException as error:
            raise ValueError(f"DNS seed name {self.name!r} is not a DNS name ({error})") from error
        if not self.name.strip(".") or any(c.isspace() for c in self.name):
            raise ValueError(f"DNS seed name {self.name!r} is not a DNS name")
        if self.port is not None and not 0 < self.port <= 65535:
            raise ValueError(f"DNS seed port {self.port} is outside 1..65535")

    @classmethod
    def parse(cls, text: str, nameservers: tuple[Address, ...] = ()) -> DnsSeeds:
        """``"NAME"`` or ``"NAME:PORT"``; raises ``ValueError`` naming what is wrong."""
        name, sep, port = text.strip().rpartition(":")
        if not sep:
            return cls(text.strip(), None, nameservers)
        if not port.isdigit():
            raise ValueError(f"DNS seed {text!r}: the port must be a number")
        return cls(name, int(port), nameservers)

    def __str__(self) -> str:
        return f"DNS name {self.name}" + ("" if self.port is None else f" (port {self.port})")


class SeedFinder:
    """Looks ``seeds`` up at once and then every ``seed_dns_interval`` in a thread of its own,
    and tells ``membership`` each new non-empty set (``SeedsFound``), until ``stop()``.

    A failed lookup is logged (a warning when the reason changes) and tried again at the next
    interval; it never stops the member: a name that never resolves ends the join as any join
    that no seed answers, at ``join_timeout``.
    """

    def __init__(
        self, seeds: DnsSeeds, membership: pykka.ActorRef[Any], settings: Settings
    ) -> None:
        self._seeds = seeds
        self._membership = membership
        self._settings = settings
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"seed-dns-{seeds.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop looking; a lookup under way ends by its own timeout and is dropped."""
        self._stopping.set()

    def _run(self) -> None:
        from actors.dns_lookup import resolve_seeds  # dnspython: only for a member that uses it

        found: tuple[Address, ...] = ()
        problem: str | None = None
        while not self._stopping.is_set():
            try:
                now = resolve_seeds(self._seeds, self._settings.seed_dns_timeout)
            except SeedLookupError as error:
                level = logging.DEBUG if str(error) == problem else logging.WARNING
                logger.log(level, "No seed from %s yet: %s; trying again", self._seeds, error)
                problem = str(error)
            else:
                problem = None
                if now != found and not self._stopping.is_set():
                    found = now
                    logger.info("Seeds from %s: %s", self._seeds, ", ".join(map(str, now)))
                    try:
                        self._membership.tell(SeedsFound(now))
                    except pykka.ActorDeadError:
                        return  # the node stopped
            self._stopping.wait(self._settings.seed_dns_interval)
