"""What clients that come and go leave behind in a member: its RSS after each round of cycles.

Usage: ``python benchmarks/client_churn.py [--rounds 3] [--cycles 100]``. Starts one member in a
process of its own, then, per round, starts ``--cycles`` clients one after another, each until it
sees the member, asks the member's actor once, then stops. After each round (and 6 s for the
handshake timers to lapse) it prints the member's RSS, its RSS once glibc has given its free heap
back (``malloc_trim``: what is left is in use), and its thread count. Linux with glibc only. The
member's own tables are checked by ``tests/test_client_churn.py``; this is the figure of issue 18
(1.2 MB of RSS that did not come back after 300 cycles).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import subprocess
import sys
import threading
import time
from typing import Any

import pykka

import actors


class _Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


def _rss() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def _member() -> None:
    """The member's process: prints its port, then one line of figures per line read."""
    node = actors.start_member(cluster_name="churn", host="127.0.0.1", port=0)
    echo = _Echo.start()
    node.register("echo", echo)
    print(node.address.port, flush=True)
    for _ in sys.stdin:
        before = _rss()
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give back the free heap
        print(f"{before:.2f} {_rss():.2f} {threading.active_count()}", flush=True)
    node.stop()
    echo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--member", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.member:
        _member()
        return
    member = subprocess.Popen(
        [sys.executable, __file__, "--member"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pipe_in, pipe_out = member.stdin, member.stdout
    assert pipe_in is not None
    assert pipe_out is not None
    port = int(pipe_out.readline())

    def figures(label: str) -> None:
        pipe_in.write("\n")
        pipe_in.flush()
        rss, trimmed, threads = pipe_out.readline().split()
        print(f"{label}: rss {rss} MB ({trimmed} MB after malloc_trim), threads {threads}")

    figures("before")
    for round_number in range(1, args.rounds + 1):
        for _ in range(args.cycles):
            client = actors.start_client(cluster_name="churn", members=[f"127.0.0.1:{port}"])
            deadline = time.monotonic() + 10
            while client.cluster.size() != 1 and time.monotonic() < deadline:
                time.sleep(0.005)
            client.remote("echo").ask("hello", timeout=10)
            client.stop()
        time.sleep(6)
        figures(f"after {round_number * args.cycles} cycles")
    pipe_in.close()
    member.wait(30)


if __name__ == "__main__":
    main()
