"""Tunable timings and limits of a node, with their defaults.

This is the only place a default is written.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from messages.address import Address

PROTOCOL_VERSION = 3  # 2: envelopes name the membership version by digest (issue 18); 3: runs
# of envelopes in one frame (``Envelopes``)
LOAD_BALANCING = ("round_robin", "random")
HTTP_PORT = 8558  # management over HTTP, when ``http_address`` names no port (Akka's)
MIN_SECRET_BYTES = 16
"""Shortest shared secret taken: whoever records one handshake can test guesses of the secret
offline, so it must be too long to guess (``openssl rand -base64 32`` makes a good one)."""

__all__ = [
    "HTTP_PORT",
    "LOAD_BALANCING",
    "MIN_SECRET_BYTES",
    "PROTOCOL_VERSION",
    "Settings",
    "secret_bytes",
]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Timings are in seconds. Validated on construction so a bad value fails at start, clearly."""

    cluster_name: str = "dev"
    gossip_interval: float = 1.0
    heartbeat_interval: float = 1.0
    # Gossip runs ``fast_gossip_factor`` times per interval while a member has not seen the
    # current version (from ``gossip_digest_first_members`` members, not while its fast ticks
    # come late: ``Step.speeds_up``); a peer is picked among those that have not seen it with
    # this probability.
    fast_gossip_factor: int = 3
    gossip_unseen_bias: float = 0.8
    phi_threshold: float = 8.0
    acceptable_heartbeat_pause: float = 3.0
    min_std_deviation: float = 0.1
    monitored_by: int = 5
    # Confirmation before accusation (SWIM/Lifeguard): a silent heartbeat target is published
    # unreachable only once one of ``indirect_checks`` relays also finds it silent for
    # ``probe_timeout``; an observer none of whose relays answers suspects itself and raises its
    # local health score (at most ``max_local_health``), which stretches its probe deadlines.
    indirect_checks: int = 3
    probe_timeout: float = 0.5
    max_local_health: int = 7
    # SWIM's probe timeout before phi (docs/architecture.md, the answer check): a heartbeat target
    # that has not answered ``probe_timeout`` after a heartbeat gets a relay round at once, so a
    # silent crash is unreachable in ~1.8 s instead of ~5.4 s. Off by default: in the simulator it
    # costs 21 more total losses per 1,000 schedules (53 against 32), and a process that
    # stops answering for ~1.5 s is reported where phi waits ~4.5 s.
    answer_check: bool = False
    down_after: float = 10.0
    # The stable window instead of ``down_after`` when every unreachable member is a confirmed
    # crash (every accusation of it a refused dial, docs/architecture.md); never longer than
    # ``down_after``. Heartbeat interval + a probe round + gossip convergence, with a margin.
    crash_down_after: float = 3.0
    # Pekko's down-all-when-unstable: a member whose unreachable picture keeps changing for
    # ``down_after`` plus this long without a decision downs itself. None (the default) is off:
    # in the simulator, at 7.5 s, it turned 134 of 1,000 total losses into 340.
    down_all_when_unstable: float | None = None
    join_timeout: float = 20.0
    # Join retries: ``join_backoff`` doubling once per round of seeds, at most ``join_backoff_max``;
    # a client's reconnections: ``reconnect_backoff`` doubling per failure, at most the same cap.
    # Each wait is spread by +-``backoff_jitter`` (a fraction) so restarted nodes
    # do not march in step.
    join_backoff: float = 0.25
    reconnect_backoff: float = 0.1
    join_backoff_max: float = 2.0
    backoff_jitter: float = 0.25
    leave_timeout: float = 15.0
    tombstone_ttl: float = 86_400.0
    connect_timeout: float = 2.0
    handshake_timeout: float = 5.0
    max_pending_handshakes: int = 64
    max_pending_handshakes_per_source: int = 32
    max_links: int = 512
    max_outbound_bytes: int = 8 * 1024 * 1024
    idle_timeout: float = 30.0
    max_frame_bytes: int = 16 * 1024 * 1024
    ask_timeout: float = 10.0
    causal_wait: float = 5.0
    # Envelopes (and, apart, publishes) the ordering actor holds back waiting for an earlier one.
    max_held_messages: int = 10_000
    # Flow control of the tells and asks this node has sent but not yet written to a socket: a full
    # gate makes ``tell``/``ask`` wait up to ``ask_timeout`` for room (``block_on_backpressure``),
    # or raise ``Backpressure`` at once.
    max_messages_in_flight: int = 10_000
    max_bytes_in_flight: int = 8 * 1024 * 1024
    block_on_backpressure: bool = True
    # The load balancer's strategy (``node.remote(name)`` without a member, ``NextMember``):
    # "round_robin" (Hazelcast's RoundRobinLB) or "random" (RandomLB).
    load_balancing: str = "round_robin"
    # Seeds from DNS (``start_member(seed_dns=...)``, ``--seed-dns``): while a member joins, the
    # name is looked up again every ``seed_dns_interval``, each lookup given ``seed_dns_timeout``.
    seed_dns_interval: float = 1.0
    seed_dns_timeout: float = 2.0
    # Shared-secret authentication of every link (docs/architecture.md#authentication): with a
    # ``secret``, both ends of each link prove they hold it (HMAC-SHA256 over both ends' fresh
    # nonces) before anything else either sent is read; a peer without it is refused. It never
    # crosses the wire. ``previous_secret`` is accepted too (and proved to a peer that holds only
    # it) while a key rotation rolls out. Bytes, or a str taken as UTF-8, of at least
    # ``MIN_SECRET_BYTES``. None (the default) is off: production clusters should set it.
    # Never shown by ``repr``.
    secret: bytes | None = dataclasses.field(default=None, repr=False)
    previous_secret: bytes | None = dataclasses.field(default=None, repr=False)
    # HTTP management (docs/operations.md), off unless ``http_address`` ("host:port"; port 0:
    # any free port; no port: ``HTTP_PORT``) is set. ``http_token``: the bearer token a PUT
    # (leave, down) must carry; None: the ``secret``; neither: every PUT is refused.
    # ``http_timeout``: the longest a request may take to arrive, each ask of the member's
    # actors, and writing the answer.
    http_address: str | None = None
    http_token: str | bytes | None = dataclasses.field(default=None, repr=False)
    http_timeout: float = 2.0
    # Backpressure on the receiving side (docs/architecture.md#backpressure): while more than
    # ``max_inbound_messages`` application messages (or ``max_inbound_bytes`` of their payloads)
    # read off the links wait for their actors (or one actor's inbox holds that many), the links
    # that bring them are not read, so TCP makes their senders wait; they are read again below
    # half of each bound, and at least once every ``read_pause_limit`` (heartbeats queue behind).
    max_inbound_messages: int = 1_000
    max_inbound_bytes: int = 8 * 1024 * 1024
    # Joining without end (Akka's default; issue 18): with ``join_retry_forever`` a join that no
    # seed has answered within ``join_timeout`` goes on trying the seeds (a WARNING per attempt
    # from then on) instead of failing, so a member whose seeds are alive but starved (a join
    # storm on a busy host) joins late instead of exiting. A refusal still ends the join at once.
    # ``membership member`` joins so unless given ``--join-timeout``.
    join_retry_forever: bool = False
    # Status before gossip (docs/architecture.md, *Gossip*; issue 18): in a cluster of at least
    # ``gossip_digest_first_members`` members a gossip tick sends the version digest, even to a
    # peer that has not seen the version, and the full state follows only where the exchange
    # shows it is needed. A smaller cluster sends the full state to such a peer at once (Akka's
    # rule): there a digest is nearly as big as the state, and its extra round trip only slows
    # what a lossy network lets through.
    gossip_digest_first_members: int = 32

    def __post_init__(self) -> None:
        for name in ("secret", "previous_secret"):
            object.__setattr__(self, name, secret_bytes(name, getattr(self, name)))
        if self.previous_secret is not None and self.secret is None:
            raise ValueError("previous_secret is set without a secret: set the new one as secret")
        if not self.cluster_name or not isinstance(self.cluster_name, str):
            raise ValueError("cluster_name must be a non-empty string")
        if self.load_balancing not in LOAD_BALANCING:
            raise ValueError(
                f"load_balancing must be one of {', '.join(LOAD_BALANCING)}, "
                f"got {self.load_balancing!r}"
            )
        if not 0.0 <= self.gossip_unseen_bias <= 1.0:
            raise ValueError(
                f"gossip_unseen_bias must be within 0..1, got {self.gossip_unseen_bias}"
            )
        if not 0.0 < self.backoff_jitter < 1.0:
            raise ValueError(f"backoff_jitter must be within 0..1, got {self.backoff_jitter}")
        if self.http_address is not None:  # raises ValueError (or TypeError) saying why
            Address.parse(self.http_address, HTTP_PORT)
        if self.http_token is not None and not (
            isinstance(self.http_token, str | bytes) and self.http_token
        ):
            raise ValueError("http_token must be a non-empty str or bytes, or None")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"{field.name} must be positive, got {value!r}")

    @classmethod
    def lan(cls, **overrides: Any) -> Settings:
        """The defaults: Akka's timings for a LAN (1 s gossip and heartbeats, phi 8, 3 s pause)."""
        return cls().replace(**overrides)

    @classmethod
    def fast_test(cls, **overrides: Any) -> Settings:
        """Timings for tests that run many nodes in one process on a small machine: a crashed
        member is unreachable after ~1.5 s and downed ~1.5 s later; the pause is generous because
        the nodes share one GIL."""
        fast = cls(
            gossip_interval=0.2,
            heartbeat_interval=0.2,
            acceptable_heartbeat_pause=1.0,
            probe_timeout=0.2,
            down_after=1.5,
            join_timeout=15.0,
            leave_timeout=10.0,
            ask_timeout=10.0,
        )
        return fast.replace(**overrides)

    def replace(self, **overrides: Any) -> Settings:
        """These settings with ``overrides`` (field names) changed, validated anew. Raises
        ``TypeError`` naming any name that is not a setting (and the closest one, if any)."""
        names = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            hints = [_hint(name, names) for name in unknown]
            raise TypeError(f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(hints)}")
        return dataclasses.replace(self, **overrides)

    def backoff(self, base: float, failures: int, jitter: float) -> float:
        """Seconds to wait after ``failures`` failed tries.

        ``base`` doubled per failure, capped at ``join_backoff_max``, scaled by ``jitter`` (a number
        in 0..1, e.g. from the caller's rng).
        """
        spread = 1.0 + self.backoff_jitter * (2.0 * jitter - 1.0)
        return float(min(base * 2.0 ** min(failures, 16), self.join_backoff_max) * spread)

    @property
    def read_pause_limit(self) -> float:
        """The longest a link goes unread for backpressure: a small part of the silence the
        failure detector tolerates, so that a flooded member's heartbeats still get through."""
        return self.acceptable_heartbeat_pause / 10

    @property
    def unacked_timeout(self) -> float:
        """How long data sent on a link may stay unacknowledged before the link is dropped: as
        long as the failure detector tolerates silence (one interval plus the acceptable pause)."""
        return self.heartbeat_interval + self.acceptable_heartbeat_pause


def secret_bytes(name: str, value: object) -> bytes | None:
    """``value`` as a shared secret's bytes (a str as UTF-8; None stays None), or ``ValueError``
    (``TypeError`` for another type) saying why it cannot be one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes or str, not {type(value).__name__}")
    secret = bytes(value)
    if not secret:
        raise ValueError(f"{name} is empty: leave it unset to turn authentication off")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{name} has {len(secret)} bytes, fewer than {MIN_SECRET_BYTES}: a recorded "
            "handshake lets anyone test guesses of it offline, so it must be too long to guess"
        )
    return secret


def _hint(name: str, names: set[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
