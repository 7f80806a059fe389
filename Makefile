# asterisk-cti: targets a newcomer can guess. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the package and its two runtime deps only (what `make demo` needs); STAMP adds the dev tools
RUNTIME := $(VENV)/.runtime

.PHONY: install desktop-deps broker-deps screenshots phonebar test integration lab lab-stop lint typecheck docs demo demo-callcentre bench bench-callcentre stress check clean

$(RUNTIME): setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install -q -e '.[dev,docs,bench]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the package (editable) and every dev tool

# What the desktop hand-off tests need of the system (tests/desktop): Xvfb for Tk, tkinter,
# the libraries PySide6's offscreen platform loads, and ImageMagick's import for the phone bar's
# screenshots. Installed (Debian, as root) when missing.
DESKTOP_DEBS := xvfb python3-tk libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 imagemagick

desktop-deps:  ## the system packages of the desktop tests (Xvfb, tkinter, Qt's libraries)
	@command -v Xvfb >/dev/null && $(PYTHON) -c 'import tkinter' 2>/dev/null \
	  && ldconfig -p | grep -q 'libEGL.so.1 ' && ldconfig -p | grep -q 'libxkbcommon.so.0 ' \
	  && command -v import >/dev/null \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DESKTOP_DEBS); }

screenshots: $(STAMP) desktop-deps  ## docs/_static/phonebar-*.png: the phone bar test, under Xvfb
	PHONEBAR_SCREENSHOTS=$(CURDIR)/docs/_static $(BIN)/python -m pytest tests/desktop/test_phonebar.py -q

phonebar: $(RUNTIME)  ## the example Tk phone bar on an embedded simulator (needs a display)
	$(BIN)/python examples/phonebar.py --sim

# The MQTT broker of the call-centre server tests (tests/server): mosquitto and
# mosquitto_passwd, from the Debian package. Installed (as root) when missing.
broker-deps:  ## the system package of the server tests (mosquitto)
	@{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null && command -v mosquitto_passwd >/dev/null \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto; }

test: $(STAMP) desktop-deps broker-deps  ## the unit test suite (no PBX needed)
	$(BIN)/python -m pytest tests --ignore=tests/integration -q

lint: $(STAMP)  ## ruff, and import-linter's layering contracts (pyproject.toml)
	$(BIN)/ruff check asterisk_cti tests benchmarks examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict examples

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W -b html docs docs/_build/html

integration: $(STAMP) broker-deps  ## the real-Asterisk lab tests (root; first run builds a cached Debian sid root; mosquitto for the call centre)
	command -v mmdebstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap; }
	ASTERISK_CTI_LAB_REQUIRED=1 $(BIN)/python -m pytest tests/integration -q

lab: $(STAMP)  ## start the lab (Asterisk 22 + phones 1000/1002/1006) and leave it running
	command -v mmdebstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap; }
	$(BIN)/python -m tests.integration.lab up

lab-stop: $(STAMP)  ## stop what make lab started
	$(BIN)/python -m tests.integration.lab down

demo: $(RUNTIME)  ## the main job on the embedded simulator (installs the package and its 2 deps only)
	$(BIN)/asterisk-cti demo

demo-callcentre: $(RUNTIME) broker-deps  ## the call centre: simulator, mosquitto, CTI server, two desktops
	$(BIN)/python -m pip install -q -e '.[server]'
	$(BIN)/asterisk-cti demo --callcentre

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# 500 MQTT desktops -> mosquitto -> CtiServer -> simulator with 1,000 lines, 20 and 50 calls/s
# (~6 min: 3 runs with RemoteClient desktops, 3 with plain paho; CC_ARGS=--quick for a smoke
# run, see benchmarks/callcentre.py)
bench-callcentre: $(STAMP) broker-deps  ## the call-centre scale benchmark (docs/benchmarks.rst)
	$(BIN)/python -m benchmarks.callcentre $(CC_ARGS)

stress: $(STAMP)  ## floods and memory bounds with figures (~2 min; STRESS_ARGS=--quick for less)
	$(BIN)/python -m benchmarks.stress $(STRESS_ARGS)

check: lint typecheck test docs

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
