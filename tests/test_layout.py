"""The README's layout map and the tree agree: every module is on the map, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "messages")


def layout_map() -> list[str]:
    """The paths of the README's layout map, built from its indentation (two spaces a level)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout\n", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's Layout section has no ```text block"
    paths: list[str] = []
    parents: list[str] = []
    for line in block.group(1).splitlines():
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"odd indentation: {line!r}"
        name = line.split()[0]
        del parents[indent // 2 :]
        paths.append("".join(parents) + name)
        if name.endswith("/"):
            parents.append(name)
    return paths


def modules_in_tree() -> set[str]:
    """Every module of the packages; a subpackage stands for its own ``__init__.py``."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" and path.parent.name != package:
                relative = relative.removesuffix("__init__.py")
            found.add(relative)
        found.add(f"{package}/")
    return found


def test_every_module_is_on_the_map_and_every_entry_exists() -> None:
    mapped = layout_map()
    assert len(mapped) == len(set(mapped)), "an entry is on the map twice"
    on_map = {path for path in mapped if path.startswith(tuple(f"{p}/" for p in PACKAGES))}
    tree = modules_in_tree()
    assert sorted(tree - on_map) == [], "modules missing from the README's layout map"
    assert sorted(on_map - tree) == [], "entries of the README's layout map that do not exist"
    others = [path for path in mapped if path not in on_map]
    assert [path for path in others if not (ROOT / path).exists()] == []
