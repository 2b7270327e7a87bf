"""Length-prefixed frames and the MessagePack codec of tagged Structs."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages import Address, Member, MemberRemoved, MemberStatus, MemberUp, VectorClock
from messages.events import EVENT_TYPES
from messages.membership.protocol import Gossip as WireGossip
from messages.membership.protocol import Heartbeat, Join, RemovalNotice
from messages.messaging.envelope import (
    MAX_RUN,
    Answer,
    Ask,
    Envelope,
    Envelopes,
    Failure,
    Publish,
    Tell,
    size_bound,
)
from messages.messaging.versions import EMPTY_DIGEST
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.codec import WIRE_TYPES
from messages.wire.framing import (
    Codec,
    DecodeError,
    DecodeFailure,
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    TruncatedFrame,
    encode_frame,
)
from messages.wire.handshake import HANDSHAKE_FRAME_BYTES, Hello, Role
from messages.wire.remote import PLAIN, UnknownMessageType, decode_payload


class Gossip(msgspec.Struct, frozen=True, tag=True):
    sender: Member
    reply_to: Address
    version: VectorClock
    seen: frozenset[str]
    statuses: tuple[MemberStatus, ...] = ()


class Ping(msgspec.Struct, frozen=True, tag=True):
    sequence: int


class Pong(msgspec.Struct, frozen=True, tag=True):
    sequence: int


def decode_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    return [payload for chunk in chunks for payload in decoder.feed(chunk)]


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    assert encode_frame(bytes(258))[:4] == b"\x00\x00\x01\x02"


def test_single_frame_round_trips() -> None:
    decoder = FrameDecoder()

    assert decoder.feed(encode_frame(b"hello")) == [b"hello"]
    assert decoder.pending_bytes == 0


def test_empty_payload_round_trips() -> None:
    assert FrameDecoder().feed(encode_frame(b"") + encode_frame(b"x")) == [b"", b"x"]


def test_many_frames_in_one_chunk() -> None:
    payloads = [bytes([n]) * n for n in range(200)]

    assert FrameDecoder().feed(b"".join(map(encode_frame, payloads))) == payloads


def test_frames_split_at_every_byte_position() -> None:
    payloads = [b"first", b"", b"third payload"]
    stream = b"".join(map(encode_frame, payloads))

    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        assert decode_all(decoder, [stream[:cut], stream[cut:]]) == payloads, cut
        assert decoder.pending_bytes == 0


def test_frames_fed_one_byte_at_a_time() -> None:
    payloads = [b"a" * 300, b"b", b"c" * 70]
    stream = b"".join(map(encode_frame, payloads))
    decoder = FrameDecoder()

    assert decode_all(decoder, [stream[i : i + 1] for i in range(len(stream))]) == payloads


def test_partial_frame_is_kept_and_counted_as_pending() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"0123456789")

    assert decoder.feed(encode_frame(b"done") + frame[:7]) == [b"done"]
    assert decoder.pending_bytes == 7
    assert decoder.feed(frame[7:]) == [b"0123456789"]
    assert decoder.pending_bytes == 0


def test_big_frame_in_small_pieces_takes_linear_time() -> None:
    payload = bytes(range(256)) * (Settings().max_frame_bytes // 256)
    stream = encode_frame(payload)
    decoder = FrameDecoder()
    piece = 1024

    started = time.perf_counter()
    received = decode_all(decoder, [stream[i : i + piece] for i in range(0, len(stream), piece)])
    elapsed = time.perf_counter() - started

    assert received == [payload]
    assert elapsed < 5.0  # re-copying the growing buffer on each piece takes minutes


def test_frame_of_exactly_the_maximum_size_is_accepted() -> None:
    assert FrameDecoder(max_frame_bytes=8).feed(encode_frame(b"12345678")) == [b"12345678"]


def test_oversized_header_is_rejected_before_its_payload_arrives() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)

    with pytest.raises(FrameTooLarge, match="1025 bytes, more than the maximum of 1024"):
        decoder.feed((1025).to_bytes(4, "big"))


def test_oversized_header_is_rejected_when_it_completes_across_chunks() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    header = (2**32 - 1).to_bytes(4, "big")

    assert decoder.feed(encode_frame(b"ok") + header[:2]) == [b"ok"]
    with pytest.raises(FrameTooLarge):
        decoder.feed(header[2:])


def test_decoder_stays_failed_after_an_oversized_header() -> None:
    decoder = FrameDecoder(max_frame_bytes=16)
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(bytes(17)))

    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(b"fine"))


def test_frame_errors_are_value_errors() -> None:
    for error in (FrameTooLarge, TruncatedFrame, DecodeError):
        assert issubclass(error, FrameError)
    assert issubclass(FrameError, ValueError)


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 7])
def test_finish_raises_for_a_frame_truncated_at_eof(cut: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"whole") + encode_frame(b"part")[:cut])

    with pytest.raises(TruncatedFrame, match=f"{cut} bytes"):
        decoder.finish()


def test_finish_accepts_a_stream_ending_between_frames() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"one") + encode_frame(b"two"))

    decoder.finish()


@pytest.mark.parametrize("max_frame_bytes", [0, -1, 2**32])
def test_decoder_rejects_bad_maximum(max_frame_bytes: int) -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameDecoder(max_frame_bytes=max_frame_bytes)


def test_decoder_rejects_non_int_maximum() -> None:
    with pytest.raises(TypeError, match="max_frame_bytes"):
        FrameDecoder(max_frame_bytes=1.5)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_split_of_concatenated_frames_decodes_to_the_same_payloads(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(map(encode_frame, payloads))
    bounds = [0, *sorted(cut % (len(stream) + 1) for cut in cuts), len(stream)]
    chunks = [stream[start:end] for start, end in itertools.pairwise(bounds)]
    decoder = FrameDecoder()

    assert decode_all(decoder, chunks) == payloads
    assert decoder.pending_bytes == 0
    decoder.finish()


def make_gossip() -> Gossip:
    sender = Member.create("127.0.0.1:5701", attributes={"zone": "a"}).with_status(
        MemberStatus.UP, up_number=3
    )
    return Gossip(
        sender=sender,
        reply_to=Address("::1", 5702),
        version=VectorClock({sender.uuid: 4, "other": 1}),
        seen=frozenset({sender.uuid, "other"}),
        statuses=(MemberStatus.JOINING, MemberStatus.REMOVED),
    )


def test_codec_round_trips_member_address_clock_and_frozenset() -> None:
    codec = Codec((Gossip, Ping))
    gossip = make_gossip()

    decoded = codec.decode(codec.encode(gossip))

    assert decoded == gossip
    assert isinstance(decoded, Gossip)
    assert isinstance(decoded.seen, frozenset)
    assert isinstance(decoded.version, VectorClock)
    assert decoded.statuses[1] is MemberStatus.REMOVED
    assert codec.decode(codec.encode(Ping(7))) == Ping(7)


def test_codec_round_trips_membership_events() -> None:
    codec = Codec(EVENT_TYPES)
    member = Member.create("10.0.0.1:5701")
    events = [
        MemberUp(version=1, member=member),
        MemberRemoved(version=2, member=member, previous_status=MemberStatus.DOWN),
    ]

    assert [codec.decode(codec.encode(event)) for event in events] == events


def test_codec_payload_travels_in_a_frame() -> None:
    codec = Codec((Ping, Pong))
    stream = b"".join(encode_frame(codec.encode(msg)) for msg in (Ping(1), Pong(2), Ping(3)))

    payloads = FrameDecoder().feed(stream)

    assert [codec.decode(payload) for payload in payloads] == [Ping(1), Pong(2), Ping(3)]


@pytest.mark.parametrize("garbage", [b"", b"\xc1", b"\xff\xfe\xfd", b"\x93\x01", b"plain text"])
def test_codec_rejects_garbage_bytes(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        Codec((Ping, Pong)).decode(garbage)


def test_codec_rejects_unknown_tag() -> None:
    payload = Codec((Ping, Pong)).encode(Pong(1))

    with pytest.raises(DecodeError) as refused:
        Codec((Ping,)).decode(payload)
    assert refused.value.failure is DecodeFailure.INVALID


def test_codec_rejects_wrong_field_types() -> None:
    payload = msgspec.msgpack.encode({"type": "Ping", "sequence": "not a number"})

    with pytest.raises(DecodeError) as refused:
        Codec((Ping,)).decode(payload)
    assert refused.value.failure is DecodeFailure.INVALID
    assert Codec((Ping,)).decode(msgspec.msgpack.encode({"type": "Ping", "sequence": 1})) == Ping(1)


def test_codec_rejects_values_out_of_their_bounds() -> None:
    gossip = msgspec.structs.asdict(make_gossip())
    gossip["reply_to"] = {"host": "h", "port": 70000}
    payload = msgspec.msgpack.encode({"type": "Gossip", **gossip})

    with pytest.raises(DecodeError) as refused:
        Codec((Gossip,)).decode(payload)
    assert refused.value.failure is DecodeFailure.INVALID
    gossip["reply_to"]["port"] = 65535
    Codec((Gossip,)).decode(msgspec.msgpack.encode({"type": "Gossip", **gossip}))


def test_codec_refuses_to_encode_an_unregistered_type() -> None:
    with pytest.raises(TypeError, match="Pong is not a message type"):
        Codec((Ping,)).encode(Pong(1))


class Untagged(msgspec.Struct):
    value: int


class OtherTagField(msgspec.Struct, tag=True, tag_field="kind"):
    value: int


class PingAlias(msgspec.Struct, tag="Ping"):
    value: int


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ((), "non-empty tuple"),
        ([Ping], "non-empty tuple"),
        ((Ping, dict), "must be msgspec Struct classes"),
        ((Ping, Untagged), "Untagged is not a tagged Struct"),
        ((Ping, PingAlias), "share the tag 'Ping'"),
        ((Ping, OtherTagField), "share one tag field"),
    ],
)
def test_codec_constructor_rejects_bad_types(types: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Codec(types)  # type: ignore[arg-type]


def test_a_first_frame_limit_applies_to_the_first_frame_only() -> None:
    decoder = FrameDecoder(max_frame_bytes=1000, first_frame_bytes=10)
    hello, big = b"h" * 8, b"b" * 500

    assert decoder.feed(encode_frame(hello) + encode_frame(big)) == [hello, big]
    with pytest.raises(FrameTooLarge, match=r"maximum of 1000$"):
        decoder.feed((1001).to_bytes(4, "big"))


def test_the_first_frame_limit_can_cover_a_handshake_of_several_frames() -> None:
    """With a secret, a stranger's Hello and its proof are both small: a big frame in their place
    is refused from its header, even in the same read as the Hello."""
    decoder = FrameDecoder(max_frame_bytes=1000, first_frame_bytes=10, first_frames=2)
    with pytest.raises(FrameTooLarge, match="11 bytes, more than the maximum of 10 for a first"):
        decoder.feed(encode_frame(b"h" * 8) + (11).to_bytes(4, "big"))
    decoder = FrameDecoder(max_frame_bytes=1000, first_frame_bytes=10, first_frames=2)
    frames = [b"h" * 8, b"p" * 10, b"b" * 500]
    assert decoder.feed(b"".join(map(encode_frame, frames))) == frames


def test_a_first_frame_over_its_limit_is_refused_from_its_header() -> None:
    decoder = FrameDecoder(max_frame_bytes=1000, first_frame_bytes=10)

    with pytest.raises(FrameTooLarge, match="11 bytes, more than the maximum of 10 for a first"):
        decoder.feed((11).to_bytes(4, "big"))


WIRE_CODEC = Codec(WIRE_TYPES)
SAMPLE_MESSAGES = (
    Hello(
        cluster_name="shop",
        protocol_version=1,
        uuid="u-1",
        role=Role.MEMBER,
        address=Address("127.0.0.1", 5701),
    ),
    WireGossip(from_uuid="member-00000", to_uuid="member-00001", state=converged_cluster(3)),
    Heartbeat(from_uuid="member-00000", to_uuid="member-00001", sequence=7),
    Join(member=Member.create(Address("127.0.0.1", 5702), attributes={"zone": "a"})),
    RemovalNotice(to_uuid="member-00002", reason="removed"),
)
SAMPLE_PAYLOADS = tuple(WIRE_CODEC.encode(message) for message in SAMPLE_MESSAGES)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_on_a_link_raise_only_frame_errors(data: bytes) -> None:
    decoder = FrameDecoder(first_frame_bytes=HANDSHAKE_FRAME_BYTES)
    with contextlib.suppress(FrameError):
        for payload in decoder.feed(data):
            WIRE_CODEC.decode(payload)
        decoder.finish()


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(SAMPLE_PAYLOADS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_mutated_wire_messages_decode_or_raise_only_frame_errors(
    payload: bytes, mutations: list[tuple[int, int]]
) -> None:
    """Flipped bytes in real messages: invalid UTF-8, wrong types, bad lengths, broken tags."""
    mutated = bytearray(payload)
    for position, value in mutations:
        mutated[position % len(mutated)] = value
    with contextlib.suppress(FrameError):
        WIRE_CODEC.decode(bytes(mutated))


def test_invalid_utf8_in_a_hello_is_a_decode_error() -> None:
    payload = SAMPLE_PAYLOADS[0].replace(b"shop", b"sh\xffp")

    with pytest.raises(DecodeError) as refused:
        WIRE_CODEC.decode(payload)
    assert refused.value.failure is DecodeFailure.MALFORMED


@pytest.mark.parametrize("payload", [b"\xa2\xff\xfe", b"\xc1", b"\x92\x01"])
def test_an_unreadable_application_payload_is_an_unknown_message_type(payload: bytes) -> None:
    """Invalid UTF-8, a reserved byte, a truncated array: the router handles one error type."""
    with pytest.raises(UnknownMessageType, match="cannot be read"):
        decode_payload(PLAIN, payload)


# -- runs of envelopes ---------------------------------------------------------------------------


def _run_envelope(sequence: int, payload: bytes = b"\xa1x") -> Envelope:
    body = Tell("worker", "bench.Blob", msgspec.Raw(payload))
    return Envelope(sequence=sequence, version=EMPTY_DIGEST, body=body)


def test_a_run_of_envelopes_travels_in_one_frame() -> None:
    run = Envelopes([_run_envelope(n) for n in range(1, 4)])

    (payload,) = FrameDecoder().feed(encode_frame(WIRE_CODEC.encode(run)))

    decoded = WIRE_CODEC.decode(payload)
    assert isinstance(decoded, Envelopes)
    assert [(e.sequence, e.sender, bytes(e.body.payload)) for e in decoded.envelopes] == [
        (n, "", b"\xa1x") for n in range(1, 4)
    ]


@pytest.mark.parametrize("length", [0, MAX_RUN + 1])
def test_a_run_of_no_envelopes_or_too_many_is_invalid(length: int) -> None:
    envelope = msgspec.msgpack.decode(WIRE_CODEC.encode(_run_envelope(1)))
    payload = msgspec.msgpack.encode({"type": "Envelopes", "envelopes": [envelope] * length})

    with pytest.raises(DecodeError) as refused:
        WIRE_CODEC.decode(payload)
    assert refused.value.failure is DecodeFailure.INVALID


def test_a_run_with_one_bad_envelope_is_invalid_whole() -> None:
    good = msgspec.msgpack.decode(WIRE_CODEC.encode(_run_envelope(1)))
    bad = {**good, "sequence": 0}
    payload = msgspec.msgpack.encode({"type": "Envelopes", "envelopes": [good, bad]})

    with pytest.raises(DecodeError) as refused:
        WIRE_CODEC.decode(payload)
    assert refused.value.failure is DecodeFailure.INVALID


_texts = st.text(max_size=40)
_bodies = st.one_of(
    st.builds(Tell, _texts, _texts, st.binary(max_size=64).map(msgspec.Raw)),
    st.builds(Ask, _texts, _texts, st.binary(max_size=64).map(msgspec.Raw), st.integers(0, 2**63)),
    st.builds(Answer, st.integers(0, 2**63), _texts, st.binary(max_size=64).map(msgspec.Raw)),
    st.builds(Failure, st.integers(0, 2**63), _texts, _texts),
    st.builds(
        Publish,
        _texts,
        _texts,
        st.binary(max_size=64).map(msgspec.Raw),
        st.dictionaries(_texts, st.integers(0, 2**63), max_size=3).map(VectorClock),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    body=_bodies,
    sender=st.text(max_size=36),
    clock=st.none() | st.dictionaries(_texts, st.integers(0, 2**63), max_size=3),
)
def test_an_envelopes_size_bound_is_never_below_its_encoded_size(
    body: Any, sender: str, clock: dict[str, int] | None
) -> None:
    """What a sender counts to keep a run within a frame."""
    envelope = Envelope(
        sender=sender,
        sequence=2**62,
        version=-(2**63),
        body=body,
        version_clock=None if clock is None else VectorClock(clock),
    )
    assert size_bound(envelope) >= len(WIRE_CODEC.encode(envelope))
