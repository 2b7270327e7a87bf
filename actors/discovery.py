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
import time
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import pykka

from messages.address import DEFAULT_PORT, Address
from messages.membership.effects import SeedsFound
from messages.settings import Settings

__all__ = ["DnsSeeds", "LookupFailure", "SeedFinder", "SeedLookupError", "resolve_seeds"]

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


def resolve_seeds(seeds: DnsSeeds, timeout: float) -> tuple[Address, ...]:
    """The addresses ``seeds`` names now, in the order found, within ``timeout`` seconds.

    Raises ``SeedLookupError`` when there are none, or no answer came.
    """
    lookup = _Lookup(seeds.nameservers, time.monotonic() + timeout)
    if seeds.port is None:
        service = seeds.name if seeds.name.startswith("_") else SRV_PREFIX + seeds.name
        try:
            return lookup.services(service)
        except SeedLookupError as error:
            if service == seeds.name or error.failure in (
                LookupFailure.TIMEOUT,
                LookupFailure.FAILED,
            ):
                raise
    port = DEFAULT_PORT if seeds.port is None else seeds.port
    return tuple(Address(host, port) for host in lookup.hosts(seeds.name))


class _Lookup:
    """The queries of one resolution, sharing one resolver and one deadline."""

    def __init__(self, nameservers: tuple[Address, ...], deadline: float) -> None:
        self._deadline = deadline
        try:
            self._resolver = dns.resolver.Resolver(configure=not nameservers)
        except dns.exception.DNSException as error:  # no /etc/resolv.conf, say
            raise SeedLookupError("(configuration)", LookupFailure.FAILED, repr(error)) from error
        if nameservers:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(server.host, server.port) for server in nameservers
            ]

    def hosts(self, name: str) -> tuple[str, ...]:
        """The A then AAAA addresses of ``name``."""
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            answer = self._query(name, rdtype)
            if answer is not None:
                found.extend(rdata.address for rdata in answer)
        if not found:
            raise SeedLookupError(name, LookupFailure.NO_RECORDS, "no A or AAAA record")
        return tuple(dict.fromkeys(found))

    def services(self, name: str) -> tuple[Address, ...]:
        """The targets of the SRV records of ``name``, each at its port; a target's addresses
        from the answer's additional section where it has them, else looked up (a target
        with none is skipped)."""
        answer = self._query(name, dns.rdatatype.SRV)
        if answer is None:
            raise SeedLookupError(name, LookupFailure.NO_RECORDS, "no SRV record")
        glue: dict[dns.name.Name, list[str]] = {}
        for rrset in answer.response.additional:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                glue.setdefault(rrset.name, []).extend(rdata.address for rdata in rrset)
        found: list[Address] = []
        for record in answer:
            if record.target == dns.name.root:  # "no such service here"
                continue
            hosts = glue.get(record.target) or self._target_hosts(record.target.to_text())
            found.extend(Address(host, record.port) for host in hosts)
        if not found:
            raise SeedLookupError(name, LookupFailure.NO_RECORDS, "no SRV target")
        return tuple(dict.fromkeys(found))

    def _target_hosts(self, target: str) -> tuple[str, ...]:
        """The addresses of an SRV target; none for one that has none (yet): the others count."""
        try:
            return self.hosts(target)
        except SeedLookupError as error:
            if error.failure in (LookupFailure.TIMEOUT, LookupFailure.FAILED):
                raise
            logger.debug("SRV target skipped: %s", error)
            return ()

    def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.resolver.Answer | None:
        """The answer, or None when the name has no record of ``rdtype``; raises
        ``SeedLookupError`` when it does not exist at all or no answer came in time."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise SeedLookupError(name, LookupFailure.TIMEOUT, "out of time")
        try:
            return self._resolver.resolve(name, rdtype, search=True, lifetime=remaining)
        except dns.resolver.NoAnswer:
            return None
        except dns.resolver.NXDOMAIN as error:
            raise SeedLookupError(name, LookupFailure.NO_SUCH_NAME, "NXDOMAIN") from error
        except dns.exception.Timeout as error:
            raise SeedLookupError(name, LookupFailure.TIMEOUT, repr(error)) from error
        except (dns.exception.DNSException, OSError) as error:
            raise SeedLookupError(name, LookupFailure.FAILED, repr(error)) from error


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
