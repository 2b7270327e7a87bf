"""The ``name: value`` lines every benchmark prints, and its targets checked at the end."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Mapping
from importlib.metadata import version


class Report:
    """Prints ``name: value`` lines and keeps the numbers, to check them against ``targets`` (the
    most a figure may be) and ``minimums`` (the least)."""

    def __init__(self, targets: Mapping[str, float], minimums: Mapping[str, float] = {}) -> None:
        self.targets = targets
        self.minimums = minimums
        self.figures: dict[str, float] = {}

    def __call__(self, name: str, value: object) -> None:
        if isinstance(value, int | float):
            self.figures[name] = value
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name}: {text}", flush=True)

    def environment(self) -> None:
        """Versions, CPUs and date: what a figure was measured on."""
        self("python_version", platform.python_version())
        self("pykka_version", version("pykka"))
        self("msgspec_version", version("msgspec"))
        self("cpu_count", os.cpu_count())
        self("date", datetime.date.today().isoformat())

    def check_targets(self) -> None:
        """One line per target: ok or MISSED, with the figure and its limit."""
        checks = [(name, limit, "<=") for name, limit in self.targets.items()]
        checks += [(name, limit, ">=") for name, limit in self.minimums.items()]
        for name, limit, sign in checks:
            value = self.figures.get(name)
            if value is None:
                self(f"target_{name}", "not measured")
                continue
            met = value <= limit if sign == "<=" else value >= limit
            self(f"target_{name}", f"{'ok' if met else 'MISSED'} ({value:.3g} {sign} {limit:g})")
