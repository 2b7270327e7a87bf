"""``membership demo``: a live local cluster of member processes, narrated as it changes.

Starts 4 member processes on loopback and a watching client, SIGKILLs one, starts a fresh one,
lets one leave gracefully (SIGTERM), prints every event as it happens and the final member table,
and ends every process it started.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pykka

from actors.cli.render import event_text, table_text
from actors.client import Client, start_client
from actors.listeners.recorder import record_events, wait_until
from messages.events import ClusterEvent, MemberEvent, MemberRemoved, MemberUnreachable, MemberUp
from messages.local.commands import GetEvents

__all__ = [
    "CLUSTER",
    "STEP_TIMEOUT",
    "TIMINGS",
    "free_port",
    "run_demo",
    "spawn_member",
    "up_count",
]

CLUSTER = "demo"
TIMINGS = ["--gossip-interval", "0.5", "--heartbeat-interval", "0.5", "--down-after", "3"]
STEP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn_member(port: int, seed_port: int, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """A member process of the demo cluster on 127.0.0.1:``port``."""
    command = [sys.executable, "-m", "actors", "member", "--cluster", CLUSTER]
    command += ["--bind", f"127.0.0.1:{port}", "--seed", f"127.0.0.1:{seed_port}", *TIMINGS, *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _show(event: ClusterEvent) -> None:
    print(f"   {time.strftime('%H:%M:%S')}  {event_text(event)}", flush=True)


def up_count(events: tuple[ClusterEvent, ...]) -> int:
    """How many members are up, from an event history."""
    up = {e.member.uuid for e in events if isinstance(e, MemberUp)}
    return len(up - {e.member.uuid for e in events if isinstance(e, MemberRemoved)})


def _has(kind: type[ClusterEvent], port: int) -> Callable[[tuple[ClusterEvent, ...]], bool]:
    return lambda events: any(
        isinstance(e, kind) and isinstance(e, MemberEvent) and e.member.address.port == port
        for e in events
    )


@contextlib.contextmanager
def _processes() -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    processes: dict[int, subprocess.Popen[bytes]] = {}
    try:
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


def run_demo() -> int:
    ports = [free_port() for _ in range(5)]
    seed = ports[0]
    with _processes() as processes:
        _say(f"starting 4 members on 127.0.0.1:{ports[0]}..{ports[3]} (seed {seed})")
        for slot, port in enumerate(ports[:4]):
            processes[port] = spawn_member(port, seed, ("--attribute", f"slot={slot}"))
        client: Client = start_client(
            cluster_name=CLUSTER, members=[f"127.0.0.1:{p}" for p in ports[:4]], join_timeout=30
        )
        recorder = record_events(client.listeners, _show)
        try:
            wait_until(recorder, lambda events: up_count(events) >= 4, STEP_TIMEOUT)

            victim = ports[3]
            _say(f"SIGKILL member 127.0.0.1:{victim}: expect MemberUnreachable, then MemberRemoved")
            processes[victim].send_signal(signal.SIGKILL)
            wait_until(recorder, _has(MemberRemoved, victim), STEP_TIMEOUT)

            fresh = ports[4]
            _say(f"starting a fresh member on 127.0.0.1:{fresh}")
            processes[fresh] = spawn_member(fresh, seed)
            wait_until(recorder, _has(MemberUp, fresh), STEP_TIMEOUT)

            leaver = ports[1]
            _say(f"SIGTERM member 127.0.0.1:{leaver}: a graceful leave, never unreachable")
            processes[leaver].send_signal(signal.SIGTERM)
            wait_until(recorder, _has(MemberRemoved, leaver), STEP_TIMEOUT)
            processes[leaver].wait(STEP_TIMEOUT)
            unreachable = _has(MemberUnreachable, leaver)(
                recorder.ask(GetEvents(), block=True, timeout=STEP_TIMEOUT)
            )
            print(
                f"   member {leaver} exited with code {processes[leaver].returncode}; "
                f"seen unreachable: {unreachable}"
            )

            _say("final member table (* = leader)")
            print(table_text(client.cluster_state()), flush=True)
        except pykka.Timeout:
            print("demo step timed out", file=sys.stderr)
            return 1
        finally:
            client.stop()
            recorder.stop()  # after the client, whose last events it shows

        _say("stopping the remaining members")
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(STEP_TIMEOUT)
    print("demo done", flush=True)
    return 0
