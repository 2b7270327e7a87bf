"""A pool of workers on a 3-process cluster, and a client that spreads requests over them.

Run: python examples/worker_pool.py

Starts three member processes (this file with ``--worker``), each with a ``Worker`` actor
registered as "worker", connects a client, and sends requests through ``client.remote("worker")``:
the client's round-robin load balancer picks the member of each request. A third of the way
through, one member is killed with SIGKILL. A request that was on its way to it fails with a clear
error (``MemberGone`` as soon as the cluster removes the member, ``RemoteTimeout`` if that takes
longer than the ask's timeout) and is sent again, to the next member. Prints how many requests
each worker served, and exits 0 once every request has been served.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import msgspec
import pykka

import actors
from actors.cli.demo import free_port
from messages import Address, Member
from messages.wire.remote import RemoteError, register

CLUSTER = "worker-pool"
REQUESTS = 60
KILL_AFTER = REQUESTS // 3
ASK_TIMEOUT = 3.0
ATTEMPTS = 3  # a request is sent again after a failure, to the next member, at most this often
START_TIMEOUT = 30.0
# Quick failure detection for a demo on one machine:
# unreachable within about 2 s, removed 2 s later.
TIMINGS: dict[str, Any] = {
    "heartbeat_interval": 0.3,
    "gossip_interval": 0.3,
    "acceptable_heartbeat_pause": 1.0,
    "down_after": 2.0,
}


@functools.partial(register, name="worker_pool.Job")  # the same name in every process
class Job(msgspec.Struct, frozen=True):
    number: int


@functools.partial(register, name="worker_pool.Done")
class Done(msgspec.Struct, frozen=True):
    number: int
    worker: str


class Worker(pykka.ThreadingActor):
    """Answers each ``Job`` with ``Done``, signed with its member's address."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Job):
            return Done(message.number, self.address)
        return None


def run_worker(port: int, seed: int) -> None:
    """One member process: a worker registered as "worker"; leaves when stdin closes."""
    with actors.start_member(
        cluster_name=CLUSTER, port=port, seeds=[Address("127.0.0.1", seed)], **TIMINGS
    ) as node:
        worker = Worker.start(str(node.address))
        try:
            node.register("worker", worker)
            print("ready", flush=True)
            sys.stdin.read()
            node.leave(timeout=10)
        finally:
            worker.stop()


@contextlib.contextmanager
def worker_processes(ports: list[int]) -> Iterator[list[subprocess.Popen[str]]]:
    """The member processes, each once it is up; they leave (or are killed) on the way out."""
    workers: list[subprocess.Popen[str]] = []
    try:
        for port in ports:
            worker = subprocess.Popen(
                [sys.executable, __file__, "--worker", str(port), "--seed", str(ports[0])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            workers.append(worker)
            assert worker.stdout is not None
            ready, _, _ = select.select([worker.stdout], [], [], START_TIMEOUT)
            if not ready or worker.stdout.readline().strip() != "ready":
                raise SystemExit(f"the worker on port {port} did not start")
        yield workers
    finally:
        for worker in workers:
            assert worker.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                worker.stdin.close()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def wait_for_members(client: actors.Client, count: int) -> None:
    """Until the client sees ``count`` members (a Hazelcast-style listener, fired for existing)."""
    all_there = threading.Event()

    def added(_: Member) -> None:
        if client.cluster.size() >= count:
            all_there.set()

    registration = client.cluster.add_listener(member_added=added, fire_for_existing=True)
    try:
        if not all_there.wait(START_TIMEOUT):
            raise SystemExit(f"the client saw {client.cluster.size()} of {count} members")
    finally:
        client.cluster.remove_listener(registration)


def serve_all(client: actors.Client, victim: subprocess.Popen[str]) -> collections.Counter[str]:
    """Every request served once, through the round-robin load balancer; ``victim`` is killed
    after ``KILL_AFTER`` requests. Returns the number of requests each worker served."""
    workers = client.remote("worker")
    served: collections.Counter[str] = collections.Counter()
    for number in range(REQUESTS):
        if number == KILL_AFTER:
            victim.send_signal(signal.SIGKILL)
            print(f"killed the worker with pid {victim.pid}")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                done = workers.ask(Job(number), timeout=ASK_TIMEOUT)
            except RemoteError as error:
                print(f"request {number} failed: {type(error).__name__}: {error}")
                if attempt == ATTEMPTS:
                    raise
                continue
            served[done.worker] += 1
            break
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description="A worker pool on a 3-process cluster.")
    parser.add_argument("--worker", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.seed)
        return
    ports = [free_port() for _ in range(3)]
    with (
        worker_processes(ports) as workers,
        actors.start_client(
            cluster_name=CLUSTER, members=[Address("127.0.0.1", ports[0])], **TIMINGS
        ) as client,
    ):
        wait_for_members(client, len(ports))
        print("members:", ", ".join(str(member.address) for member in client.cluster.get_members()))
        served = serve_all(client, victim=workers[2])
        for worker, count in sorted(served.items()):
            print(f"{worker} served {count} requests")
        if sum(served.values()) != REQUESTS:
            raise SystemExit(f"served {sum(served.values())} of {REQUESTS} requests")


if __name__ == "__main__":
    main()
