"""The DNS queries of a seed lookup (dnspython), apart from ``actors.discovery`` so that only a
member given DNS seeds loads dnspython (some 8 MB and 45 ms of imports)."""

from __future__ import annotations

import logging
import time

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from actors.discovery import SRV_PREFIX, DnsSeeds, LookupFailure, SeedLookupError
from messages.address import DEFAULT_PORT, Address

__all__ = ["resolve_seeds"]

logger = logging.getLogger(__name__)


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
