"""Smoke test of the installed package (run by .ci/wheel-smoke from outside the checkout).

Every module of the wheel imports, and one member and one client find each other through the
public API; exits non-zero with the reason otherwise.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
from pathlib import Path

import msgspec

import actors
import messages

TIMEOUT = 15.0


@messages.register
class Hello(msgspec.Struct, frozen=True):
    """An application message, registered through the top-level name the README gives."""

    text: str


def main() -> None:
    for package in (actors, messages):
        location = Path(package.__file__ or "").resolve()
        if "site-packages" not in location.parts:
            sys.exit(f"{package.__name__} was imported from {location}, not the installed wheel")
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not module.name.endswith(".__main__"):  # that one runs the command line
                importlib.import_module(module.name)

    member = actors.start_member(cluster_name="smoke", host="127.0.0.1", port=0)
    try:
        added = threading.Event()
        client = actors.start_client(cluster_name="smoke", members=[str(member.address)])
        try:
            client.cluster.add_listener(member_added=lambda _: added.set(), fire_for_existing=True)
            if not added.wait(TIMEOUT):
                sys.exit("the client saw no member")
            found = client.cluster.get_member_by_address(member.address)
            if found is None or found.uuid != member.uuid or client.cluster.size() != 1:
                sys.exit(f"the client sees {client.cluster.get_member_list()}, not {member}")
        finally:
            client.stop()
    finally:
        member.stop()
    print(f"smoke: a member and a client of pykka-membership from {Path(actors.__file__ or '')}")


if __name__ == "__main__":
    main()
