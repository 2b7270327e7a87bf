"""Every example program runs to completion and exits 0."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from actors.cli.demo import free_port

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_exits_zero(example: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=80, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example shows what it does"


@pytest.mark.timeout(90)
def test_the_readme_usage_example_runs(tmp_path: pathlib.Path) -> None:
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("```python\nimport threading")
    code = readme[start + len("```python\n") : readme.index("```", start + 10)]
    for port in ("5701", "5702"):  # the README's ports, swapped for free ones
        code = code.replace(port, str(free_port()))
    script = tmp_path / "readme_example.py"
    script.write_text(code + "\nprint('ok')\n")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=80, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
