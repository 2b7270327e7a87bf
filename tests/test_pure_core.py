"""The pure protocol core imports none of pykka, logging, time, random, socket and threading.

The core is every module of ``messages`` but ``messages.local`` (commands that carry pykka refs)
and ``messages.testing`` (the simulator, which seeds its own ``random.Random``): it takes time
and randomness as arguments and returns effects, so the shell in ``actors`` owns all I/O.

CPython 3.11 loads ``time`` while it starts, and msgspec loads it too (through ``datetime``), so
whether ``time`` is in ``sys.modules`` says nothing. The import test therefore also records every
import statement a core module runs; the static test reads every import, even one never run.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import messages

FORBIDDEN = frozenset({"pykka", "logging", "time", "random", "socket", "threading"})
IMPURE = ("messages.local", "messages.testing")
ROOT = Path(messages.__path__[0])


def core_modules() -> list[str]:
    """The names of the pure core's modules, the ``messages`` package first."""
    found = pkgutil.walk_packages(messages.__path__, "messages.")
    names = [info.name for info in found if not info.name.startswith(IMPURE)]
    return ["messages", *sorted(names)]


def core_files() -> list[Path]:
    impure = {ROOT / name.rsplit(".", 1)[1] for name in IMPURE}
    return sorted(p for p in ROOT.rglob("*.py") if not impure.intersection(p.parents))


# Run in a fresh interpreter: records the forbidden modules loaded before and after importing the
# core, and the import statements that core modules run themselves (``__import__`` sees those even
# when the module is loaded already).
PROBE = """
import builtins, importlib, json, sys

forbidden, core = set(sys.argv[1].split(",")), sys.argv[2].split(",")

def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in forbidden)

before, direct, original = loaded(), [], builtins.__import__

def recording(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if importer in core and level == 0 and name.split(".")[0] in forbidden:
        direct.append([importer, name])
    return original(name, globals, locals, fromlist, level)

builtins.__import__ = recording
for name in core:
    importlib.import_module(name)
builtins.__import__ = original
print(json.dumps({"before": before, "after": loaded(), "direct": direct}))
"""


def probe(modules: list[str]) -> tuple[list[list[str]], list[str]]:
    """``[importer, imported]`` of each forbidden import that ``modules`` run themselves, and the
    forbidden modules that importing them loaded, in a fresh interpreter."""
    ran = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, ",".join(sorted(FORBIDDEN)), ",".join(modules)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    seen = json.loads(ran.stdout)
    return seen["direct"], sorted(set(seen["after"]) - set(seen["before"]))


def test_importing_the_core_loads_no_forbidden_module() -> None:
    core = core_modules()
    assert "messages.membership.step" in core
    assert not any(name.startswith(IMPURE) for name in core)

    direct, loaded = probe(core)

    assert direct == [], "core modules import forbidden modules"
    assert loaded == [], "importing the core loads forbidden modules"


def test_the_probe_sees_imports_of_modules_loaded_already() -> None:
    direct, loaded = probe(["actors.transport.loop"])  # part of the shell: it owns the sockets

    assert ["actors.transport.loop", "time"] in direct
    assert {"pykka", "socket", "threading"} <= set(loaded)


def forbidden_imports(path: Path) -> list[str]:
    """``module (line n)`` for each import of a forbidden module in the file at ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{name} (line {node.lineno})" for name in names if name.split(".")[0] in FORBIDDEN
        ]
    return found


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_core_file_imports_a_forbidden_module(path: Path) -> None:
    assert forbidden_imports(path) == [], f"{path} imports forbidden modules"


def test_the_static_check_finds_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "impure.py"
    source.write_text(
        "import os, time\nfrom logging import getLogger\nfrom . import random\n"
        "def f():\n    import threading.local\n"
    )

    assert forbidden_imports(source) == [
        "time (line 1)",
        "logging (line 2)",
        "threading.local (line 5)",
    ]
