"""Sequential cross-process actor calls in xoscar: the side-by-side column of ``remote.py``.

Usage: ``python benchmarks/xoscar_echo.py COUNT`` with an interpreter that has xoscar installed
(``pip install xoscar``; remote.py's ``--xoscar-python``). An actor pool on 127.0.0.1 with one
sub-process holds an echo actor; this process (the pool's main process) calls it ``COUNT // 10``
times untimed, then ``COUNT`` times one after another, and prints the seconds of each timed call
as one JSON list on stdout, so remote.py computes the same statistics as for its own columns.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

import xoscar as xo  # type: ignore[import-not-found]


class Echo(xo.Actor):  # type: ignore[misc]
    def ping(self, number: int) -> int:
        return number + 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def round_trips(count: int) -> list[float]:
    pool = await xo.create_actor_pool(f"127.0.0.1:{free_port()}", n_process=1)
    async with pool:
        # ProcessIndex(1): the pool's sub-process, so every call crosses a process boundary
        echo = await xo.create_actor(
            Echo,
            address=pool.external_address,
            uid="echo",
            allocate_strategy=xo.allocate_strategy.ProcessIndex(1),
        )
        for number in range(count // 10):
            await echo.ping(number)
        seconds = []
        for number in range(count):
            start = time.perf_counter()
            reply = await echo.ping(number)
            seconds.append(time.perf_counter() - start)
            assert reply == number + 1, reply
        return seconds


def main() -> None:
    seconds = asyncio.run(round_trips(int(sys.argv[1])))
    print(json.dumps(seconds), flush=True)


if __name__ == "__main__":
    main()
