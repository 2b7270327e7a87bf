"""What an application envelope adds to its message, by cluster size (issue 18's target).

Usage: ``python benchmarks/envelope.py``. Prints ``name: value`` lines: for a membership version
of 10 and of 100 members (uuid4 ids, counters in the thousands, as a long-lived cluster has), the
bytes an encoded envelope adds to the encoded message it carries (``WIRE_CODEC``, the frame's
4-byte length header not counted), stamped by the ordering actor's rule: the envelope that names
the version by its digest alone (every envelope but the few that define it), the one that also
defines it (the first to each receiver after the version changes, and one per ``causal_wait / 2``
after), and, for comparison, the envelope of before, which carried the whole encoded version.
Also the time to encode and decode one envelope (the digest-only one, and the one of before),
median of 5 runs of 20,000. Checked against the target (<= 64 bytes at 100 members).
"""

from __future__ import annotations

import statistics
import time
import uuid

import msgspec
from report import Report

from messages.messaging.envelope import Envelope, EnvelopeBody, Tell
from messages.messaging.versions import Definitions, version_digest
from messages.vector_clock import VectorClock
from messages.wire.codec import WIRE_CODEC

TARGETS = {"envelope_overhead_bytes_100_members": 64.0}
SIZES = (10, 100)


class EnvelopeBefore(msgspec.Struct, frozen=True, tag="Envelope"):
    """The envelope as it was until issue 18: the whole encoded version in every one."""

    sender: str
    sequence: int
    version: msgspec.Raw
    body: EnvelopeBody


def version_of(members: int) -> VectorClock:
    """A membership version of ``members`` members."""
    return VectorClock({str(uuid.uuid4()): 1_000 + 37 * n for n in range(members)})


def round_trip_us(envelope: msgspec.Struct, decoder: msgspec.msgpack.Decoder[object]) -> float:
    """Microseconds to encode and decode ``envelope``: the median of 5 runs of 20,000."""
    encoder = msgspec.msgpack.Encoder()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20_000):
            decoder.decode(encoder.encode(envelope))
        runs.append((time.perf_counter() - start) / 20_000 * 1e6)
    return statistics.median(runs)


def measure(members: int) -> dict[str, float]:
    """Bytes added by the envelope naming the version alone, defining it, and of before; and
    the time to encode and decode the first and the last."""
    version = version_of(members)
    sender = next(iter(version.timestamps))
    body = Tell(to="worker", kind="Job", payload=msgspec.Raw(msgspec.msgpack.encode(1)))
    message = len(msgspec.msgpack.encode(body))
    digest = version_digest(version)
    definitions = Definitions(refresh=2.5)
    stamped = []
    for sequence in (70_000, 70_001):  # a link that has carried many messages
        defined = definitions.needed("receiver", digest, 0.0)
        clock = version if defined else None
        stamped.append(Envelope(sequence=sequence, version=digest, body=body, version_clock=clock))
    defining, alone = (len(WIRE_CODEC.encode(envelope)) - message for envelope in stamped)
    before = EnvelopeBefore(sender, 70_001, msgspec.Raw(msgspec.msgpack.encode(version)), body)
    return {
        f"envelope_overhead_bytes_{members}_members": alone,
        f"envelope_defining_overhead_bytes_{members}_members": defining,
        f"envelope_overhead_bytes_before_{members}_members": (
            len(msgspec.msgpack.encode(before)) - message
        ),
        f"envelope_codec_us_{members}_members": round_trip_us(
            stamped[1], msgspec.msgpack.Decoder(Envelope)
        ),
        f"envelope_codec_us_before_{members}_members": round_trip_us(
            before, msgspec.msgpack.Decoder(EnvelopeBefore)
        ),
    }


def main() -> None:
    report = Report(TARGETS)
    report.environment()
    for members in SIZES:
        for name, value in measure(members).items():
            report(name, value)
    report.check_targets()


if __name__ == "__main__":
    main()
