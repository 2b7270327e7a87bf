"""``__all__``: every module of ``actors`` and ``messages`` has one, listing what it defines in
public (classes and functions) and nothing that is not there."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pykka
import pytest

import actors
import messages


def modules() -> list[str]:
    names = ["actors", "messages"]
    for package in (actors, messages):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", modules())
def test_all_lists_the_public_classes_and_functions(name: str) -> None:
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", None)
    assert listed is not None, f"{name} has no __all__"
    assert len(set(listed)) == len(listed), f"{name}.__all__ has a name twice"
    assert [n for n in listed if not hasattr(module, n)] == [], f"{name}.__all__ names nothing"
    defined = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and isinstance(value, type | types.FunctionType)
        and value.__module__ == name
    }
    assert defined - set(listed) == set(), f"{name} defines public names its __all__ leaves out"


PUBLIC_API = {
    "start_member",
    "start_client",
    "Node",
    "Client",
    "ClusterService",
    "Settings",
    "DnsSeeds",
    "RandomLoadBalancer",
    "RoundRobinLoadBalancer",
    "EventRecorder",
    "record_events",
    "wait_until",
    "JoinRefusedError",
    "JoinTimeoutError",
    "RemoteError",
    "Backpressure",
    "MemberGone",
    "MessageTooLarge",
    "NoMemberAvailable",
    "NoSuchActor",
    "RemoteActorFailed",
    "RemoteTimeout",
    "UnknownMessageType",
    "TlsConfig",
}
"""What users call from ``actors``: a change here is a change of the public API, on purpose."""


def test_the_top_level_api_is_curated() -> None:
    assert set(actors.__all__) == PUBLIC_API
    exported = [getattr(actors, name) for name in actors.__all__]
    actor_classes = [v for v in exported if isinstance(v, type) and issubclass(v, pykka.Actor)]
    # The node's own actors are reached through its refs; users start only their event recorder.
    assert actor_classes == [actors.EventRecorder]
