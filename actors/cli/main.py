"""The ``membership`` command: run a member, list members, watch events, run the demo.

Exit codes: 0 when the member left or was stopped by a signal, 1 when it could not start (join
refused or timed out, address in use), 2 for bad arguments, 3 when the cluster downed or removed
the member (or it downed itself on the minority side of a partition): restart it and it joins as
a new member; 4 when an internal failure stopped it.

The cluster's shared secret comes from ``--secret-file PATH`` or else the environment variable
``MEMBERSHIP_SECRET`` (and, during a key rotation, the member's previous one from
``--previous-secret-file`` or ``MEMBERSHIP_PREVIOUS_SECRET``); a secret that cannot be read, or is
empty or too short, is a bad argument.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.cli.logsink import LogSink
from actors.cli.render import describe, event_text, member_rows, table_text
from actors.client import start_client
from actors.discovery import DNS_PORT, DnsSeeds
from actors.listeners.recorder import record_events
from actors.node import Node, start_member
from actors.transport.tls import TlsConfig
from messages.address import Address
from messages.events import (
    ClusterEvent,
)
from messages.local.commands import InitialState
from messages.membership.effects import TerminationKind
from messages.settings import HTTP_PORT, Settings, secret_bytes

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REMOVED",
    "build_parser",
    "main",
]

logger = logging.getLogger(__name__)
_WAIT_SLICE = 5.0  # seconds the main thread waits before it looks for a signal again
_BACKLOG_SLICE = 0.2  # the same, while log lines wait for their reader
# A signal during the start leaves once the join ends, and gives the join this long: a member
# that some peer saw UP already has its Welcome on the way; one whose seeds do not answer (it
# would try them without end) ends as at a second signal.
_JOIN_GRACE = 5.0

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REMOVED = 3
EXIT_FAILED = 4
EXIT_CODES: dict[TerminationKind, int] = {
    TerminationKind.LEFT: EXIT_OK,
    TerminationKind.STOPPED: EXIT_OK,
    TerminationKind.REMOVED: EXIT_REMOVED,
    TerminationKind.FAILED: EXIT_FAILED,
}


_DEFAULTS = Settings.lan()
_MEMBER_TIMINGS = (
    ("--gossip-interval", "gossip_interval", "seconds between gossip rounds"),
    ("--heartbeat-interval", "heartbeat_interval", "seconds between heartbeats"),
    ("--down-after", "down_after", "seconds unreachable before the leader downs a member"),
    ("--acceptable-pause", "acceptable_heartbeat_pause", "heartbeat pause the detector tolerates"),
)
"""The settings ``membership member`` takes as flags: (flag, ``Settings`` field, help)."""


def _attribute(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"attribute must be KEY=VALUE, got {text!r}")
    return key, value


def _address(text: str) -> Address:
    try:
        return Address.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _dns_seeds(text: str) -> DnsSeeds:
    try:
        return DnsSeeds.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _dns_server(text: str) -> Address:
    try:
        return Address.parse(text, default_port=DNS_PORT)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _http_address(text: str) -> Address:
    try:
        return Address.parse(text, HTTP_PORT)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _token_file(path: str) -> bytes:
    """The token a file holds, without the line end an editor adds."""
    try:
        with open(path, "rb") as file:
            token = file.read().strip()
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {error.strerror}") from error
    if not token:
        raise argparse.ArgumentTypeError(f"{path} holds no token")
    return token


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``membership``: its subcommands and their flags."""
    parser = argparse.ArgumentParser(prog="membership", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    member = commands.add_parser("member", help="run a member in the foreground")
    member.add_argument("--cluster", required=True)
    member.add_argument("--bind", required=True, type=_address, metavar="HOST:PORT")
    member.add_argument("--seed", action="append", default=[], type=_address, metavar="HOST:PORT")
    member.add_argument("--attribute", action="append", default=[], type=_attribute, metavar="K=V")
    member.add_argument("--lite", action="store_true", help="a lite (non-data) member")
    for flag, setting, text in _MEMBER_TIMINGS:
        member.add_argument(
            flag,
            dest=setting,
            type=_positive,
            default=getattr(_DEFAULTS, setting),
            metavar="S",
            help=f"{text} (default %(default)s)",
        )
    # Joining (issue 18): without --join-timeout a member tries its seeds until one answers (a
    # WARNING per attempt once join_timeout has passed), as Akka's members do by default.
    member.add_argument(
        "--join-timeout",
        type=_positive,
        metavar="S",
        help="give up (exit 1) when no seed has answered within S seconds "
        "(default: keep trying, logging each attempt)",
    )
    # HTTP management (docs/operations.md): off unless --http is given.
    member.add_argument(
        "--http",
        type=_http_address,
        metavar="HOST:PORT",
        help=f"serve management over HTTP there (port 0: any free port; default port {HTTP_PORT})",
    )
    member.add_argument(
        "--http-token-file",
        dest="http_token",
        type=_token_file,
        metavar="PATH",
        help="a file holding the bearer token PUT /cluster/members/... must carry "
        "(default: the secret; neither: PUT is refused)",
    )
    # Seeds from DNS (docs/operations.md, "Seeds from DNS").
    member.add_argument(
        "--seed-dns",
        type=_dns_seeds,
        metavar="NAME[:PORT]",
        help="seeds from DNS, looked up again while joining: A/AAAA records of NAME at PORT, or "
        "without PORT the SRV records _membership._tcp.NAME (else A/AAAA at 5701)",
    )
    member.add_argument(
        "--seed-dns-server",
        action="append",
        default=[],
        type=_dns_server,
        metavar="HOST[:PORT]",
        help="a DNS server to ask for --seed-dns (default: the system's resolver configuration)",
    )

    clients = []
    for name, text in (
        ("members", "print the member table"),
        ("watch", "print events as they happen"),
    ):
        command = commands.add_parser(name, help=text)
        clients.append(command)
        command.add_argument("--cluster", required=True)
        command.add_argument(
            "--connect", required=True, action="append", type=_address, metavar="HOST:PORT"
        )
        command.add_argument("--json", action="store_true", help="JSON output")
        command.add_argument(
            "--timeout",
            type=_positive,
            default=5.0,
            metavar="S",
            help="how long to keep trying the members before giving up (default 5)",
        )

    _add_secret_flags(member, previous=True)
    for name in ("members", "watch"):
        _add_secret_flags(commands.choices[name], previous=False)
    commands.add_parser("demo", help="a live local cluster of member processes, narrated")
    for command in (member, *clients):
        _add_tls_flags(command)
    return parser


# -- the shared secret (docs/architecture.md#authentication) ----------------------------------

_SECRET_SOURCES = (
    ("secret", "--secret-file", "MEMBERSHIP_SECRET", "the cluster's shared secret"),
    (
        "previous_secret",
        "--previous-secret-file",
        "MEMBERSHIP_PREVIOUS_SECRET",
        "the secret before a key rotation, still accepted while it rolls out",
    ),
)
"""(setting, flag, environment variable, help) of each secret the commands take."""


def _read_secret(path: str) -> bytes:
    """A secret file's bytes, a trailing newline dropped (argparse type: bad ones exit 2)."""
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot read the secret file {path}: {error.strerror or error}"
        ) from error
    try:
        secret = secret_bytes(f"the secret file {path}", text.rstrip(b"\r\n"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    assert secret is not None
    return secret


def _add_secret_flags(command: argparse.ArgumentParser, *, previous: bool) -> None:
    for setting, flag, variable, text in _SECRET_SOURCES[: 2 if previous else 1]:
        command.add_argument(
            flag,
            dest=setting,
            type=_read_secret,
            metavar="PATH",
            help=f"{text}, read from PATH (default: ${variable}; unset: no authentication, "
            "which only a trusted network allows)",
        )


def _secrets(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The secrets as ``Settings`` overrides: each flag given, else its environment variable."""
    secrets: dict[str, Any] = {}
    for setting, _, variable, _ in _SECRET_SOURCES:
        if not hasattr(args, setting):
            continue  # a command without this flag
        value = getattr(args, setting)
        if value is None and variable in os.environ:
            try:
                value = secret_bytes(variable, os.environ[variable].rstrip("\r\n"))
            except ValueError as error:
                parser.error(str(error))
        if value is not None:
            secrets[setting] = value
    if "previous_secret" in secrets and "secret" not in secrets:
        parser.error("a previous secret is given without the current one (--secret-file)")
    return secrets


# -- TLS (issue 17) ---------------------------------------------------------------------------


def _add_tls_flags(command: argparse.ArgumentParser) -> None:
    tls = command.add_argument_group("TLS (every link; a member needs all three: mutual TLS)")
    tls.add_argument("--tls-cert", metavar="PEM", help="this node's certificate (chain)")
    tls.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    tls.add_argument("--tls-ca", metavar="PEM", help="the CA that signs every peer's certificate")


def _tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TlsConfig | None:
    """The TLS flags as a ``TlsConfig`` (None without any); a bad file or a missing flag is a
    usage error (exit 2), before anything starts."""
    cert, key, ca = (getattr(args, name, None) for name in ("tls_cert", "tls_key", "tls_ca"))
    if cert is None and key is None and ca is None:
        return None
    if ca is None:
        parser.error("--tls-ca is needed with --tls-cert and --tls-key")
    if args.command == "member" and (cert is None or key is None):
        parser.error("a member needs --tls-cert and --tls-key with --tls-ca (mutual TLS)")
    try:
        return TlsConfig(ca_file=ca, cert_file=cert, key_file=key)
    except ValueError as error:
        parser.error(str(error))


# ----------------------------------------------------------------------------------------------


def _wait_in_main_thread(wait: Callable[[float], bool], log: logging.Handler | None = None) -> None:
    """Block until ``wait(timeout)`` returns True, in slices of ``_WAIT_SLICE``; when ``log`` is
    a ``LogSink``, flush it after each, in slices of ``_BACKLOG_SLICE`` while it has a backlog
    (lines that wait for a slow reader, which no thread writes out otherwise until more come).

    CPython runs signal handlers in the main thread between bytecodes. Linux hands a signal sent
    to the process to its main thread (the first thread that does not block it), where it
    interrupts the wait at once; a kernel that hands it to another thread leaves the main thread
    blocked until its slice ends. Long slices: an idle member wakes no thread to look for signals.
    """
    sink = log if isinstance(log, LogSink) else None
    while not wait(_BACKLOG_SLICE if sink is not None and sink.backlog else _WAIT_SLICE):
        if sink is not None:
            sink.flush()


def _log_handler() -> logging.Handler:
    """A ``LogSink`` on stderr's descriptor, or a plain handler when stderr has none."""
    try:
        return LogSink(sys.stderr.fileno(), sys.stderr.encoding or "utf-8")
    except (AttributeError, OSError, ValueError):  # stderr replaced, closed or None
        return logging.StreamHandler(sys.stderr)


def _join_patience(join_timeout: float | None) -> dict[str, Any]:
    """The settings of ``--join-timeout``: give up after it, or (without it) never."""
    if join_timeout is None:
        return {"join_retry_forever": True}
    return {"join_timeout": join_timeout, "join_retry_forever": False}


def _log_events(node: Node) -> pykka.ActorRef[Any] | None:
    """Log the node's cluster events, from an actor on its dispatcher (logging an event never
    blocks: no thread of its own); None when the node has stopped already (removed while its
    start returned), whose termination is then all there is to say."""
    try:
        with node.dispatcher.hosting():
            return record_events(node.listeners, lambda event: logger.info("%s", event_text(event)))
    except pykka.ActorDeadError:
        return None


def _run_member(args: argparse.Namespace, secrets: dict[str, Any], log: logging.Handler) -> int:
    seed_dns: DnsSeeds | None = args.seed_dns
    if seed_dns is not None and args.seed_dns_server:
        seed_dns = dataclasses.replace(seed_dns, nameservers=tuple(args.seed_dns_server))
    started: list[Node] = []  # the node, once its start has returned
    leaving = threading.Event()  # a signal asked for a leave
    left = threading.Event()  # the leave has been started

    def leave(signum: int, _frame: Any) -> None:  # in the main thread, between bytecodes
        name = signal.Signals(signum).name
        if leaving.is_set():
            if not started:  # still joining: the second signal ends the process at once
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            logger.warning("%s again: stopping without waiting for the leave", name)
            threading.Thread(target=started[0].stop, name="stop", daemon=True).start()
            return
        leaving.set()
        if started:
            logger.info("%s: leaving the cluster", name)
            start_leave(started[0])
            return
        logger.info(
            "%s: leaving the cluster once joined, or stopping if the join has not ended in %g s",
            name,
            _JOIN_GRACE,
        )
        resend = threading.Timer(_JOIN_GRACE, resend_unless_started, (signum,))
        resend.daemon = True
        resend.start()

    def resend_unless_started(signum: int) -> None:  # in a timer's thread
        if not started:
            os.kill(os.getpid(), signum)

    def start_leave(node: Node) -> None:
        left.set()
        threading.Thread(target=node.leave, name="leave", daemon=True).start()

    # Installed before the start: a signal from a supervisor that saw this member UP at another
    # member (which can come before this member's start has returned) is a leave.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, leave)
    node = start_member(
        cluster_name=args.cluster,
        host=args.bind.host,
        port=args.bind.port,
        seeds=args.seed,
        attributes=dict(args.attribute),
        lite_member=args.lite,
        seed_dns=seed_dns,
        tls=args.tls,
        **{setting: getattr(args, setting) for _, setting, _ in _MEMBER_TIMINGS},
        **_join_patience(args.join_timeout),
        **secrets,
        http_address=None if args.http is None else str(args.http),
        http_token=args.http_token,
    )
    started.append(node)
    recorder = _log_events(node)
    if leaving.is_set() and not left.is_set():  # a signal during the start
        start_leave(node)
    logger.info("member %s of cluster %r running (uuid %s)", node.address, args.cluster, node.uuid)
    if node.http_address is not None:
        logger.info("management over HTTP at http://%s", node.http_address)
    _wait_in_main_thread(node.wait_stopped, log)
    if recorder is not None:
        recorder.stop()
    termination = node.termination
    assert termination is not None
    code = EXIT_CODES[termination.kind]
    logger.info(
        "member %s stopped (%s: %s), exit code %d",
        node.address,
        termination.kind.value,
        termination.reason,
        code,
    )
    return code


def _run_members(args: argparse.Namespace, secrets: dict[str, Any]) -> int:
    with start_client(
        args.cluster, args.connect, join_timeout=args.timeout, tls=args.tls, **secrets
    ) as client:
        state = client.cluster_state()
    if args.json:
        print(json.dumps(member_rows(state), indent=2))
    else:
        print(table_text(state))
    return 0


def _run_watch(args: argparse.Namespace, secrets: dict[str, Any]) -> int:
    def show(event: ClusterEvent) -> None:
        print(json.dumps(describe(event)) if args.json else event_text(event), flush=True)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with start_client(
        args.cluster, args.connect, join_timeout=args.timeout, tls=args.tls, **secrets
    ) as client:
        recorder = record_events(client.listeners, show, InitialState.EVENTS)
        _wait_in_main_thread(stop.wait)
    recorder.stop()  # after the client: it has seen the client's last events
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    secrets = _secrets(parser, args)
    args.tls = _tls(parser, args)
    if args.command == "member" and args.seed_dns_server and args.seed_dns is None:
        parser.error("--seed-dns-server needs --seed-dns")
    quiet = args.command == "demo"  # the demo narrates; its library logs would interleave
    handler = _log_handler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
        handlers=[handler],
    )
    try:
        match args.command:
            case "member":
                return _run_member(args, secrets, handler)
            case "members":
                return _run_members(args, secrets)
            case "watch":
                return _run_watch(args, secrets)
            case "demo":
                from actors.cli.demo import run_demo

                return run_demo()
    except (OSError, RuntimeError, TimeoutError) as error:
        logger.error("%s", error)
        return EXIT_ERROR
    finally:
        logging.getLogger().removeHandler(handler)  # what is logged later goes to lastResort
        handler.close()
    return 2
