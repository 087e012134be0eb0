# MindFlow: `make demo` analyses the bundled sample clip; `make test` runs the test suite.
# Both create .venv with `python3 -m venv` when it is missing and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SAMPLE := samples/mindflow-sample.mp4

.PHONY: demo test test-fast e2e bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt tools/requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt
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

clean-venv:
	rm -rf $(VENV)
