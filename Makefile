# The two entry points of the README: `make demo` and `make test`.
# `make test` installs the exact versions locked in requirements/test.txt; `make test-latest` and
# `make test-oldest` run the suite on the newest and the oldest releases pyproject.toml allows;
# `make lock` resolves the locks again (see the README's development section).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements/test.txt
OLDEST := requirements/oldest.txt
UV_COMPILE := --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" pyproject.toml --extra test requirements/build.in

.PHONY: demo test lint bench test-latest test-oldest lock wheel-smoke

$(STAMP): pyproject.toml $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --require-hashes -r $(LOCK)
	$(PY) -m pip install -qq --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m actors demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/local.py

# The suite on the newest releases the declared ranges allow, in a venv of its own made anew.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -qq --upgrade pip
	.venv-latest/bin/python -m pip install -qq --upgrade -e '.[test]'
	.venv-latest/bin/python -m pip list --format=freeze | grep -iE '^(pykka|msgspec|pytest|hypothesis)='
	.venv-latest/bin/python -m pytest

# The suite on the oldest releases the declared ranges allow (requirements/oldest.txt).
test-oldest:
	rm -rf .venv-oldest
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install -qq --require-hashes -r $(OLDEST)
	.venv-oldest/bin/python -m pip install -qq --no-deps --no-build-isolation -e .
	.venv-oldest/bin/python -m pytest

# Resolve both locks again from pyproject.toml (uv runs from a venv of its own, only here).
lock:
	test -x .venv-uv/bin/uv || ($(PYTHON) -m venv .venv-uv && .venv-uv/bin/pip install -qq uv)
	.venv-uv/bin/uv pip compile $(UV_COMPILE) --upgrade -o $(LOCK)
	.venv-uv/bin/uv pip compile $(UV_COMPILE) --upgrade --resolution lowest-direct -o $(OLDEST)

# What a user installs: the wheel, in a venv outside the checkout, smoke-tested from there.
wheel-smoke:
	bash .ci/wheel-smoke
