# asterisk-cti: targets a newcomer can guess. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test integration lab lab-stop lint typecheck docs demo bench check clean

$(STAMP): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,docs,bench]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the package (editable) and every dev tool

test: $(STAMP)  ## the unit test suite (no PBX needed)
	$(BIN)/python -m pytest tests --ignore=tests/integration -q

lint: $(STAMP)
	$(BIN)/ruff check asterisk_cti tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W -b html docs docs/_build/html

demo: $(STAMP)  ## the main job on the embedded simulator
	$(BIN)/asterisk-cti demo

check: lint typecheck test docs

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
