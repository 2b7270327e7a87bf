"""The handshake's pure rules: which Hello a member accepts, which of two crossed links stays,
and the shared-secret challenge-response."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from messages.address import Address
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.handshake import (
    NONCE_BYTES,
    Hello,
    HelloAccepted,
    HelloChallenge,
    HelloProof,
    HelloRefused,
    Role,
    answer_challenge,
    challenge,
    check_hello,
    check_proof,
    keeps_dialled_link,
)

SETTINGS = Settings(cluster_name="shop")


def hello(cluster_name: str = "shop", version: int = PROTOCOL_VERSION) -> Hello:
    return Hello(cluster_name, version, "u1", Role.MEMBER, Address("127.0.0.1", 5702))


def test_a_hello_of_the_same_cluster_and_protocol_is_accepted() -> None:
    assert check_hello(SETTINGS, hello()) is None


def test_another_cluster_or_protocol_is_refused_naming_both_sides() -> None:
    refusal = check_hello(SETTINGS, hello(cluster_name="bank"))
    assert refusal is not None
    assert "cluster name mismatch" in refusal
    assert "'shop'" in refusal
    assert "'bank'" in refusal
    refusal = check_hello(SETTINGS, hello(version=PROTOCOL_VERSION + 1))
    assert refusal is not None
    assert "protocol version mismatch" in refusal


def test_of_two_crossed_links_both_ends_keep_the_same_one() -> None:
    addresses = [Address("127.0.0.1", 5701), Address("127.0.0.1", 5702), Address("10.0.0.1", 1)]
    for one, other in itertools.permutations(addresses, 2):
        # Exactly one end keeps the link it dialled; the other takes that same link.
        assert keeps_dialled_link(one, other) != keeps_dialled_link(other, one)
    assert keeps_dialled_link(addresses[0], addresses[1])


# -- shared-secret authentication: the pure challenge-response --------------------------------

SECRET = b"the cluster's shared secret"
OLD_SECRET = b"the secret before the rotation"
SECURE = Settings(cluster_name="shop", secret=SECRET)
DIALLER_NONCE, ACCEPTOR_NONCE, OTHER_NONCE = (bytes([n]) * NONCE_BYTES for n in (1, 2, 3))


def secure_hello(nonce: bytes = DIALLER_NONCE) -> Hello:
    return msgspec.structs.replace(hello(), nonce=nonce)


def handshake(
    dialler: Settings, acceptor: Settings, nonce: bytes = ACCEPTOR_NONCE
) -> tuple[HelloProof | str, str | None]:
    """One whole exchange: the dialler's answer to the challenge, and the acceptor's verdict."""
    sent = secure_hello()
    answer = answer_challenge(dialler, sent, challenge(acceptor, "acceptor", sent, nonce))
    return answer, check_proof(acceptor, "acceptor", sent, nonce, answer)


def test_both_sides_with_the_same_secret_prove_it_to_each_other() -> None:
    assert check_hello(SECURE, secure_hello()) is None
    answer, verdict = handshake(SECURE, SECURE)
    assert isinstance(answer, HelloProof)
    assert verdict is None


def test_a_secret_on_one_side_only_is_refused_naming_authentication() -> None:
    refusal = check_hello(SECURE, hello())
    assert refusal is not None
    assert "authentication failed" in refusal
    assert "has none configured" in refusal
    refusal = check_hello(SETTINGS, secure_hello())
    assert refusal is not None
    assert "authentication failed" in refusal


def test_a_wrong_secret_fails_on_the_dialling_side_first() -> None:
    wrong = SECURE.replace(secret=b"another secret, just as long")
    answer, _ = handshake(wrong, SECURE)
    assert isinstance(answer, str)
    assert "authentication failed" in answer
    sent = secure_hello()
    proof = answer_challenge(wrong, sent, challenge(wrong, "acceptor", sent, ACCEPTOR_NONCE))
    refusal = check_proof(SECURE, "acceptor", sent, ACCEPTOR_NONCE, proof)
    assert refusal is not None
    assert "authentication failed" in refusal


def test_a_proof_replayed_against_a_fresh_nonce_fails() -> None:
    sent = secure_hello()
    recorded = answer_challenge(SECURE, sent, challenge(SECURE, "acceptor", sent, ACCEPTOR_NONCE))
    assert check_proof(SECURE, "acceptor", sent, ACCEPTOR_NONCE, recorded) is None
    refusal = check_proof(SECURE, "acceptor", sent, OTHER_NONCE, recorded)
    assert refusal is not None
    assert "authentication failed" in refusal


def test_a_reflected_proof_fails_in_the_other_direction() -> None:
    """The acceptor's own proof, sent back to it as the dialler's, proves nothing."""
    sent = secure_hello()
    reflected = HelloProof(proof=challenge(SECURE, "acceptor", sent, ACCEPTOR_NONCE).proofs[0])
    assert check_proof(SECURE, "acceptor", sent, ACCEPTOR_NONCE, reflected) is not None
    # and a dialler's proof presented as an acceptor's challenge proves nothing either
    proof = answer_challenge(SECURE, sent, challenge(SECURE, "acceptor", sent, ACCEPTOR_NONCE))
    assert isinstance(proof, HelloProof)
    mirrored = HelloChallenge(uuid="acceptor", nonce=ACCEPTOR_NONCE, proofs=(proof.proof,))
    assert isinstance(answer_challenge(SECURE, sent, mirrored), str)


def test_the_proofs_bind_the_hello_and_the_acceptor() -> None:
    sent = secure_hello()
    proof = answer_challenge(SECURE, sent, challenge(SECURE, "acceptor", sent, ACCEPTOR_NONCE))
    other_role = msgspec.structs.replace(sent, role=Role.CLIENT)
    assert check_proof(SECURE, "acceptor", other_role, ACCEPTOR_NONCE, proof) is not None
    assert check_proof(SECURE, "another", sent, ACCEPTOR_NONCE, proof) is not None
    elsewhere = challenge(SECURE, "acceptor", secure_hello(OTHER_NONCE), ACCEPTOR_NONCE)
    assert isinstance(answer_challenge(SECURE, sent, elsewhere), str)


def test_anything_but_a_proof_or_challenge_is_refused_naming_what_came() -> None:
    sent = secure_hello()
    refusal = check_proof(SECURE, "acceptor", sent, ACCEPTOR_NONCE, HelloAccepted(uuid="x"))
    assert refusal is not None
    assert "HelloAccepted" in refusal
    answer = answer_challenge(SECURE, sent, HelloAccepted(uuid="x"))
    assert isinstance(answer, str)
    assert "HelloAccepted" in answer
    answer = answer_challenge(SECURE, sent, HelloRefused(reason="cluster name mismatch"))
    assert isinstance(answer, str)
    assert "cluster name mismatch" in answer


def test_during_a_rotation_old_and_new_members_prove_to_each_other() -> None:
    """Restarted one by one with the new secret and the old one as previous, a member and one
    not yet restarted (or one restarted later without the previous) still authenticate."""
    old = SECURE.replace(secret=OLD_SECRET)
    rotating = SECURE.replace(previous_secret=OLD_SECRET)
    pairs = [
        *itertools.permutations((old, rotating), 2),
        *itertools.permutations((rotating, SECURE), 2),
    ]
    for dialler, acceptor in [*pairs, (rotating, rotating)]:
        answer, verdict = handshake(dialler, acceptor)
        assert isinstance(answer, HelloProof), (dialler.secret, acceptor.secret)
        assert verdict is None
    for dialler, acceptor in itertools.permutations((old, SECURE), 2):
        answer, _ = handshake(dialler, acceptor)
        assert isinstance(answer, str)  # the rotation done, the old secret is refused


def test_secrets_are_checked_and_kept_out_of_repr() -> None:
    assert Settings(secret="0123456789abcdef").secret == b"0123456789abcdef"
    with pytest.raises(ValueError, match="secret is empty"):
        Settings(secret=b"")
    with pytest.raises(ValueError, match="fewer than 16"):
        Settings(secret="short")
    with pytest.raises(ValueError, match="previous_secret is set without a secret"):
        Settings(previous_secret=SECRET)
    with pytest.raises(TypeError, match="secret must be bytes or str"):
        Settings(secret=12345678901234567)  # type: ignore[arg-type]
    shown = repr(SECURE.replace(previous_secret=OLD_SECRET))
    assert SECRET.decode() not in shown
    assert OLD_SECRET.decode() not in shown
