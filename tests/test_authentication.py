"""Shared-secret authentication of every link, end to end over real TCP on 127.0.0.1.

The right secret joins (members and clients); a wrong secret, no secret, or a secret on one side
only is refused with ``JoinRefusedError`` naming authentication, logged on both sides; a recorded
handshake replayed, a reflected proof, and frames sent before any proof change nothing; a rotation
lets members with the old and with the new secret talk while it rolls out. The pure checks are in
tests/test_handshake.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, RawLink, WatchedNode, all_up
from support.processes import run_cli

from actors.cli.main import main
from actors.client import start_client
from actors.node import start_member
from actors.supervisor import JoinRefusedError, JoinTimeoutError
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.member import Member, MemberStatus
from messages.membership.protocol import Join, RemovalNotice, Watch
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder, encode_frame
from messages.wire.handshake import (
    NONCE_BYTES,
    Hello,
    HelloAccepted,
    HelloChallenge,
    HelloProof,
    HelloRefused,
    Role,
    answer_challenge,
)

SECRET = b"a shared secret long enough to keep"
OTHER_SECRET = b"another secret, just as long as it"
OLD_SECRET = b"the secret before this key rotation"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def secure() -> Iterator[ClusterHarness]:
    """Members and clients that hold ``SECRET``."""
    with ClusterHarness(secret=SECRET) as cluster:
        yield cluster


def refusal_of(harness: ClusterHarness, seed: Address, **overrides: object) -> JoinRefusedError:
    """The error of a member that tries to join through ``seed`` with ``overrides``."""
    with pytest.raises(JoinRefusedError) as refused:
        start_member(
            port=0, seeds=[seed], settings=harness.settings.replace(join_timeout=5), **overrides
        )
    return refused.value


def client_refusal_of(
    harness: ClusterHarness, member: Address, **overrides: object
) -> JoinRefusedError:
    with pytest.raises(JoinRefusedError) as refused:
        start_client(
            members=[member], settings=harness.settings.replace(join_timeout=5), **overrides
        )
    return refused.value


def logged(caplog: pytest.LogCaptureFixture, module: str, text: str) -> bool:
    """Whether this project's ``module`` logged a record containing ``text``."""
    return any(r.name == module and text in r.getMessage() for r in caplog.records)


def secure_hello(cluster_name: str, role: Role = Role.CLIENT) -> Hello:
    return Hello(
        cluster_name=cluster_name,
        protocol_version=PROTOCOL_VERSION,
        uuid="a-stranger",
        role=role,
        nonce=os.urandom(NONCE_BYTES),
    )


def frame(message: msgspec.Struct) -> bytes:
    return encode_frame(WIRE_CODEC.encode(message))


def assert_unchanged(node: WatchedNode, members: int) -> None:
    """``node`` runs on, every one of its ``members`` up."""
    assert node.is_running
    _, state = node.settled()
    assert len(state.members) == members
    assert all(member.status is MemberStatus.UP for member in state.members)


def test_members_and_clients_with_the_right_secret_join_and_see_each_other(
    secure: ClusterHarness,
) -> None:
    first, second = secure.start(), secure.start()
    secure.wait_all_up()
    client = secure.start_client([second.address])
    client.wait(all_up({first.uuid, second.uuid}), STEP_TIMEOUT, "both members up at the client")
    secure.check_invariants()


def test_a_wrong_secret_is_refused_and_logged_on_both_sides(
    secure: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seed = secure.start()
    error = refusal_of(secure, seed.address, secret=OTHER_SECRET)
    assert "authentication" in str(error)
    assert logged(caplog, "actors.transport.dial", "authentication failed")
    assert logged(caplog, "actors.transport.accept", "authentication failed")
    error = client_refusal_of(secure, seed.address, secret=OTHER_SECRET)
    assert "authentication" in str(error)
    assert_unchanged(seed, 1)


def test_no_secret_against_a_secret_is_refused_either_way(
    secure: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer without a secret is refused by a member with one, and a member without one refuses
    a peer that has one: a misconfiguration is never a silent downgrade."""
    caplog.set_level(logging.INFO)
    seed = secure.start()
    assert "authentication" in str(refusal_of(secure, seed.address, secret=None))
    assert "authentication" in str(client_refusal_of(secure, seed.address, secret=None))
    assert logged(caplog, "actors.transport.accept", "requires the cluster's shared secret")
    with ClusterHarness() as open_cluster:
        unguarded = open_cluster.start()
        assert "authentication" in str(refusal_of(open_cluster, unguarded.address, secret=SECRET))
        error = client_refusal_of(open_cluster, unguarded.address, secret=SECRET)
        assert "authentication" in str(error)
        assert logged(caplog, "actors.transport.dial", "authentication failed")
        assert_unchanged(unguarded, 1)
    assert_unchanged(seed, 1)


def test_during_a_key_rotation_members_with_the_old_and_the_new_secret_form_one_cluster() -> None:
    """The rollout: restarted one by one with the new secret and the old one as previous, new
    members join old ones and each other; a client with only the new secret connects to a new
    member; once no member holds the old secret any more, it is refused."""
    with ClusterHarness(secret=OLD_SECRET) as cluster:
        old = cluster.start()
        rotated = [cluster.start(secret=SECRET, previous_secret=OLD_SECRET) for _ in range(2)]
        cluster.wait_all_up()
        client = cluster.start_client([rotated[1].address], secret=SECRET)
        client.wait(all_up(n.uuid for n in [old, *rotated]), STEP_TIMEOUT, "all up at the client")
        finished = cluster.start(seeds=[rotated[0].address], secret=SECRET)
        cluster.wait_all_up(nodes=[finished, *rotated])
        assert "authentication" in str(refusal_of(cluster, finished.address, secret=OLD_SECRET))
        cluster.check_invariants()


class RecordingProxy:
    """Forwards one connection to ``target`` and records what the dialling side sent on it."""

    def __init__(self, target: Address) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = Address("127.0.0.1", self._listener.getsockname()[1])
        self._target = target
        self.sent = bytearray()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="recording-proxy", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            downstream, _ = self._listener.accept()
            upstream = socket.create_connection((self._target.host, self._target.port))
            self._sockets += [downstream, upstream]
            back = threading.Thread(target=self._pump, args=(upstream, downstream, None))
            back.start()
            self._pump(downstream, upstream, self.sent)
            back.join(STEP_TIMEOUT)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if record is not None:
                    record += data
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(STEP_TIMEOUT)


def test_a_recorded_handshake_replayed_to_a_member_is_refused(
    secure: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A real client's handshake and Watch, recorded on the wire and replayed byte for byte to a
    member (the one it was made with, and a fresh one): each member challenges the replay with a
    fresh nonce, which the recorded proof does not cover; nothing after it is answered."""
    caplog.set_level(logging.INFO)
    seed = secure.start()
    proxy = RecordingProxy(seed.address)
    try:
        client = secure.start_client([proxy.address])
        client.owner.stop()
    finally:
        proxy.close()
    recorded = bytes(proxy.sent)
    assert recorded, "the proxy recorded the client's frames"
    fresh = secure.start()
    for target in (seed, fresh):
        with RawLink(target.address) as replay:
            replay.send_bytes(recorded)
            assert isinstance(replay.receive(), HelloChallenge)
            refused = replay.receive()
            assert isinstance(refused, HelloRefused)
            assert "authentication failed" in refused.reason
            assert replay.read_to_eof()
    assert logged(caplog, "actors.transport.accept", "proof does not match")
    secure.wait_all_up()
    assert_unchanged(seed, 2)


def test_a_reflected_proof_is_refused(secure: ClusterHarness) -> None:
    """The member's own proof, sent back to it as the dialler's, proves nothing."""
    seed = secure.start()
    with RawLink(seed.address) as stranger:
        stranger.send(secure_hello(secure.cluster_name))
        challenge: HelloChallenge = stranger.receive()
        stranger.send(HelloProof(proof=challenge.proofs[0]))
        stranger.send(Watch())
        refused = stranger.receive()
        assert isinstance(refused, HelloRefused)
        assert "authentication failed" in refused.reason
        assert stranger.read_to_eof()
    assert_unchanged(seed, 1)


@pytest.mark.parametrize("role", [Role.MEMBER, Role.CLIENT])
def test_frames_sent_before_the_proof_are_never_acted_on(
    secure: ClusterHarness, caplog: pytest.LogCaptureFixture, role: Role
) -> None:
    """The attack of issue 17 with a secret: a Hello, then at once a RemovalNotice naming a member
    and a Join, without proving. The member refuses the link, naming what came, and stays up with
    its cluster unchanged."""
    caplog.set_level(logging.INFO)
    victim, other = secure.start(), secure.start()
    secure.wait_all_up()
    with RawLink(victim.address) as stranger:
        stranger.send_bytes(
            b"".join(
                frame(message)
                for message in (
                    secure_hello(secure.cluster_name, role),
                    RemovalNotice(to_uuid=victim.uuid, reason="forged"),
                    Join(member=Member.create(Address("127.0.0.1", 1))),
                )
            )
        )
        assert isinstance(stranger.receive(), HelloChallenge)
        refused = stranger.receive()
        assert isinstance(refused, HelloRefused)
        assert "RemovalNotice" in refused.reason
        assert stranger.read_to_eof()
    assert logged(caplog, "actors.transport.accept", "sent RemovalNotice before proving")
    for node in (victim, other):
        assert_unchanged(node, 2)


def test_a_stranger_that_never_proves_is_closed_after_the_handshake_timeout() -> None:
    with ClusterHarness(secret=SECRET, handshake_timeout=0.5) as cluster:
        seed = cluster.start()
        with RawLink(seed.address) as stranger:
            stranger.send(secure_hello(cluster.cluster_name))
            assert isinstance(stranger.receive(), HelloChallenge)
            assert stranger.read_to_eof()
        assert_unchanged(seed, 1)


class FakeSeed:
    """A listening socket that answers the first Hello it reads with ``answers``, unproven, and
    keeps what the dialler sends after it."""

    def __init__(self, *answers: msgspec.Struct) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = Address("127.0.0.1", self._listener.getsockname()[1])
        self._answers = answers
        self.hello: Hello | None = None
        self.after_hello = b""  # every byte the dialler sent after its Hello
        self._thread = threading.Thread(target=self._serve, name="fake-seed", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError), self._listener.accept()[0] as sock:
            sock.settimeout(STEP_TIMEOUT)
            decoder = FrameDecoder()
            payloads: list[bytes] = []
            while not payloads and (data := sock.recv(65536)):
                payloads = decoder.feed(data)
            hello = WIRE_CODEC.decode(payloads[0])
            assert isinstance(hello, Hello)
            self.hello = hello
            sock.sendall(b"".join(frame(answer) for answer in self._answers))
            after = bytearray(b"".join(payloads[1:]))
            after += b"\0" * decoder.pending_bytes
            while data := sock.recv(65536):
                after += data
            self.after_hello = bytes(after)

    def close(self) -> None:
        self._listener.close()
        self._thread.join(STEP_TIMEOUT)


def test_a_member_that_does_not_prove_the_secret_is_refused_by_the_dialler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A seed that answers a joiner's Hello with an acceptance and a RemovalNotice naming the
    joiner, without any proof: the joiner acts on neither, refuses the link and the join."""
    caplog.set_level(logging.INFO)
    settings = Settings.fast_test(cluster_name="fake", secret=SECRET, join_timeout=5)
    fake = FakeSeed(HelloAccepted(uuid="fake"), RemovalNotice(to_uuid="anyone", reason="forged"))
    try:
        with pytest.raises(JoinRefusedError, match="authentication failed") as refused:
            start_member(port=0, seeds=[fake.address], settings=settings)
        assert "HelloAccepted" in str(refused.value)
        assert fake.hello is not None
        assert fake.hello.nonce is not None
        assert logged(caplog, "actors.transport.dial", "instead of proving the shared secret")
    finally:
        fake.close()


def test_a_seed_that_never_proves_the_secret_times_out_the_handshake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A seed that reads the joiner's Hello and answers nothing: each dial is closed after
    ``handshake_timeout`` with a logged reason, nothing is sent after the Hello, and the join
    times out (silence is no refusal)."""
    caplog.set_level(logging.INFO)
    settings = Settings.fast_test(
        cluster_name="fake", secret=SECRET, join_timeout=2, handshake_timeout=0.3
    )
    fake = FakeSeed()
    try:
        with pytest.raises(JoinTimeoutError):
            start_member(port=0, seeds=[fake.address], settings=settings)
        assert fake.hello is not None
        assert logged(caplog, "actors.transport.dial", "no proof of the shared secret from")
    finally:
        fake.close()
    assert fake.after_hello == b"", "the Join waited for a proof that never came"


def test_the_dialler_proves_only_after_the_member_has(secure: ClusterHarness) -> None:
    """A raw dialler with the secret: the member's challenge carries a proof the dialler can
    check, and the dialler's proof then opens the link (what a member or client does)."""
    seed = secure.start()
    with RawLink(seed.address) as dialler:
        hello = secure_hello(secure.cluster_name)
        dialler.send(hello)
        proof = answer_challenge(secure.settings, hello, dialler.receive())
        assert isinstance(proof, HelloProof)
        dialler.send(proof)
        dialler.send(Watch())
        assert isinstance(dialler.receive(), HelloAccepted)
    assert_unchanged(seed, 1)


# -- the command line: --secret-file and MEMBERSHIP_SECRET --------------------------------------


@pytest.mark.parametrize(
    ("content", "flags", "message"),
    [
        (None, ("--secret-file", "{missing}"), "cannot read the secret file"),
        (b"", ("--secret-file", "{file}"), "is empty"),
        (b"\n", ("--secret-file", "{file}"), "is empty"),
        (b"short\n", ("--secret-file", "{file}"), "fewer than 16"),
        (SECRET, ("--previous-secret-file", "{file}"), "without the current one"),
    ],
    ids=["missing", "empty", "newline-only", "short", "previous-alone"],
)
def test_a_bad_secret_file_is_a_bad_argument(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    flags: tuple[str, ...],
    message: str,
) -> None:
    file = tmp_path / "secret"
    if content is not None:
        file.write_bytes(content)
    paths = {"file": str(file), "missing": str(tmp_path / "missing")}
    args = ["member", "--cluster", "c", "--bind", "127.0.0.1:0"]
    with pytest.raises(SystemExit) as exited:
        main([*args, *(flag.format(**paths) for flag in flags)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_short_secret_in_the_environment_is_a_bad_argument(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEMBERSHIP_SECRET", "short")
    with pytest.raises(SystemExit) as exited:
        main(["members", "--cluster", "c", "--connect", "127.0.0.1:1"])
    assert exited.value.code == 2
    assert "MEMBERSHIP_SECRET has 5 bytes" in capsys.readouterr().err


def membership(*args: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    """``membership ARGS`` as a process, with ``MEMBERSHIP_SECRET`` set to ``secret`` (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "MEMBERSHIP_SECRET"}
    if secret is not None:
        env["MEMBERSHIP_SECRET"] = secret
    return run_cli(*args, timeout=STEP_TIMEOUT, env=env)


@pytest.mark.timeout(90)
def test_the_cli_takes_the_secret_from_a_file_or_the_environment_the_file_first(
    secure: ClusterHarness, tmp_path: Path
) -> None:
    seed = secure.start()
    members = ("members", "--cluster", secure.cluster_name, "--connect", str(seed.address))
    members += ("--json",)
    file = tmp_path / "secret"
    file.write_bytes(SECRET + b"\n")  # as `echo` writes it: the newline is dropped

    from_env = membership(*members, secret=SECRET.decode())
    assert from_env.returncode == 0, from_env.stderr
    assert [row["uuid"] for row in json.loads(from_env.stdout)] == [seed.uuid]
    from_file = membership(*members, "--secret-file", str(file), secret=OTHER_SECRET.decode())
    assert from_file.returncode == 0, from_file.stderr
    without = membership(*members, secret=None)
    assert without.returncode == 1
    assert "authentication failed" in without.stderr
    assert "Traceback" not in without.stderr
    assert_unchanged(seed, 1)


def test_frames_held_for_an_unproven_link_never_go_out_and_are_released_when_it_ends() -> None:
    """At the I/O thread: with a secret, a dialled link sends its Hello alone; what is written
    meanwhile waits, and when the link ends unproven the application messages held are given up
    (their ``on_sent`` called, so the flow gate gets its room back) and nothing else was sent."""
    loop = IoLoop(WIRE_CODEC, Settings(cluster_name="c", secret=SECRET), name="held-io")
    sink = pykka.ThreadingActor.start()
    released = threading.Event()
    try:
        with socket.create_server(("127.0.0.1", 0)) as server:
            server.settimeout(STEP_TIMEOUT)
            hello = Hello(
                cluster_name="c", protocol_version=PROTOCOL_VERSION, uuid="me", role=Role.CLIENT
            )
            address = Address("127.0.0.1", server.getsockname()[1])
            link = loop.dial(address, frame(Watch()), hello=hello, deliver_to=sink, manager=sink)
            loop.write(link, frame(Watch()), data=True, on_sent=released.set)
            peer, _ = server.accept()
            with peer:
                peer.settimeout(STEP_TIMEOUT)
                decoder = FrameDecoder()
                payloads: list[bytes] = []
                while not payloads:
                    payloads = decoder.feed(peer.recv(65536))
                sent = WIRE_CODEC.decode(payloads[0])
                assert isinstance(sent, Hello)
                assert sent.nonce is not None
                loop.close(link, "given up")
                assert released.wait(STEP_TIMEOUT)
                rest = b"".join(iter(lambda: peer.recv(65536), b""))
                assert payloads[1:] == []
                assert rest == b"", "a frame went out before the member proved the secret"
    finally:
        loop.stop()
        sink.stop()
