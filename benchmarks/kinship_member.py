"""A kinship member for ``benchmarks/cluster.py``'s side-by-side figures (kinship, if installed).

Usage: ``python benchmarks/kinship_member.py --bind 127.0.0.1:PORT [--seed HOST:PORT ...]``.
Runs kinship with its LAN preset (SWIM with Lifeguard) and logs every membership event on stderr
in the CLI's format, ``<time> INFO kinship: <Event> <address>``, so the benchmark reads both
systems' logs with one parser. Events map to ours: joined → MemberUp, suspect → MemberUnreachable,
dead → MemberRemoved. All members share one key: kinship refuses to run without one.
"""

from __future__ import annotations

import argparse
import base64
import logging
import signal
import threading
from typing import Any

import kinship  # type: ignore[import-not-found]

logger = logging.getLogger("kinship")

# The benchmark's cluster key: a fixed 32 bytes, fine for a loopback benchmark only.
BENCHMARK_KEY = base64.b64encode(bytes(range(32))).decode()
EVENT_NAMES = {
    "MemberJoined": "MemberUp",
    "MemberSuspect": "MemberUnreachable",
    "MemberDead": "MemberRemoved",
    "MemberLeft": "MemberRemoved",
    "MemberRecovered": "MemberReachable",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bind", required=True, help="HOST:PORT (UDP and TCP)")
    parser.add_argument("--seed", action="append", default=[], help="HOST:PORT of a member")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)-5s %(name)s: %(message)s", level="INFO")
    config = kinship.Config.lan(
        name=args.bind, bind=args.bind, cluster="bench", seeds=args.seed, keys=[BENCHMARK_KEY]
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with kinship.blocking.Cluster(config) as cluster:
        logger.info("%s joined the cluster", args.bind)
        events = cluster.events(timeout=0.5)
        # kinship has no event for the local member nor for those met while starting: the
        # members already alive when the stream opened are logged as up (a repeat is harmless).
        for member in cluster.members():
            if member.state is kinship.State.ALIVE:
                logger.info("MemberUp %s", member.addr)
        for event in events:
            if stop.is_set():
                break
            log_event(event)


def log_event(event: Any) -> None:
    name = EVENT_NAMES.get(type(event).__name__)
    member = getattr(event, "member", None)
    if name is not None and member is not None:
        logger.info("%s %s", name, member.addr)


if __name__ == "__main__":
    main()
