# MindFlow: `make demo` analyses the bundled sample clip; `make test` runs the test suite; `make dist` builds the
# release zip dist/MindFlow-<version>.zip (tools/make_dist.py: standard library only, no venv).
# Both create .venv with `python3 -m venv` when it is missing and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SAMPLE := samples/mindflow-sample.mp4

.PHONY: demo test test-fast e2e bench dist clean-venv

# A venv's bundled pip can be old (Python 3.9-3.11 bundle pip 23.0/23.2): it cannot install the hash-pinned
# requirements-dev.txt when a package asks for an extra (selenium: urllib3[socks]).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24.2"

# The run-time packages and the command line's own (tqdm: the batch's progress bar); the OBS script's Python gets
# requirements.txt alone (tools/install_obs_deps.py).
$(VENV)/.run-deps: requirements.txt requirements-cli.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-cli.txt
	touch $@

# requirements*.txt are pinned with hashes (see their headers). The tool-only packages (torch, onnx: training and
# export tests) come from TOOLS_REQUIREMENTS; they have no wheels for every Python `make test` runs on (3.9-3.14), so
# without them their tests skip — unless TOOLS_REQUIRED=1 (CI on Debian 12) makes a failed install fatal. CI's chroots
# (Python 3.13/3.14) run `make test VENV=.venv-<suite> TOOLS_REQUIREMENTS=`.
TOOLS_REQUIREMENTS ?= tools/requirements.txt
TOOLS_REQUIRED ?= 0

$(VENV)/.dev-deps: requirements.txt requirements-cli.txt requirements-dev.txt $(TOOLS_REQUIREMENTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt
ifneq ($(strip $(TOOLS_REQUIREMENTS)),)
	$(BIN)/python -m pip install -q -r $(TOOLS_REQUIREMENTS) || { [ "$(TOOLS_REQUIRED)" != 1 ] && \
	  echo "warning: $(TOOLS_REQUIREMENTS) did not install for this Python; the training/export tests will skip"; }
endif
	touch $@

demo: $(VENV)/.run-deps
	$(BIN)/python -m obs_mindflow analyze $(SAMPLE) --report-dir out/reports

test: $(VENV)/.dev-deps
	$(BIN)/python -m pytest -q

# Everything but the real-OBS and browser tests (quick loop while coding).
test-fast: $(VENV)/.dev-deps
	$(BIN)/python -m pytest -q -m "not e2e and not browser"

e2e: $(VENV)/.dev-deps
	$(BIN)/python -m pytest -q tests/e2e

bench: $(VENV)/.dev-deps
	$(BIN)/python -m tools.bench_engine

dist:
	$(PYTHON) tools/make_dist.py --out dist

clean-venv:
	rm -rf $(VENV)
