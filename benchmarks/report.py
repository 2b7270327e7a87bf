"""The ``name: value`` lines every benchmark prints, and its targets checked at the end."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Mapping
from importlib.metadata import version


class Report:
    """Prints ``name: value`` lines and keeps the numbers, to check them against ``targets``."""

    def __init__(self, targets: Mapping[str, float]) -> None:
        self.targets = targets
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
        for name, limit in self.targets.items():
            value = self.figures.get(name)
            if value is None:
                self(f"target_{name}", "not measured")
                continue
            verdict = "ok" if value <= limit else "MISSED"
            self(f"target_{name}", f"{verdict} ({value:.3g} <= {limit:g})")
