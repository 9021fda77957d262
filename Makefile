# make demo: an example agent traced, its run shown as a tree by a local receiver (no key); on a
#   terminal the receiver and its web page stay up until Ctrl-C.
# make demo-auto: the same for examples/auto_instrumentation/openai_agent.py, whose LLM calls
#   OpenTelemetry's openai-v2 instrumentation traces (its packages go in .venv-genai/openai-v2).
# make test: ruff, mypy --strict and the test suite, in .venv (created if missing).
# make bench: tcc_otel vs raw OpenTelemetry vs contextcompany, side by side (benchmarks/README.md);
#   BENCH_ARGS=--quick for a ~20 s smoke run.

PYTHON ?= python3
VENV ?= .venv
DEMO_PORT ?= 4318
DEMO_DB ?= tcc-otel-dev.db
DEMO_SCRIPT ?= examples/weather_agent.py
DEMO_PYTHON ?= $(BIN)/python
BIN := $(VENV)/bin

# Exits 0 when something accepts TCP connections on 127.0.0.1:$(DEMO_PORT).
PORT_OPEN = $(BIN)/python -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' $(DEMO_PORT) 2>/dev/null

.PHONY: demo demo-auto test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@set -eu; \
	if $(PORT_OPEN); then \
		echo "make demo: port $(DEMO_PORT) is in use; try: make demo DEMO_PORT=4319" >&2; exit 1; \
	fi; \
	if [ -t 1 ]; then \
		mode="--db $(DEMO_DB)"; trap 'exit 0' INT; \
	else \
		mode="--runs 1 --timeout 30 --db :memory:"; trap 'exit 130' INT; \
	fi; \
	PYTHONUNBUFFERED=1 $(BIN)/tcc-otel dev --port $(DEMO_PORT) $$mode & \
	receiver=$$!; \
	trap 'kill $$receiver 2>/dev/null || true' EXIT; \
	trap 'exit 130' TERM; \
	tries=0; \
	until $(PORT_OPEN); do \
		if ! kill -0 $$receiver 2>/dev/null || [ $$tries -ge 100 ]; then \
			echo "make demo: the receiver did not start listening on port $(DEMO_PORT)" >&2; \
			exit 1; \
		fi; \
		tries=$$((tries + 1)); sleep 0.1; \
	done; \
	env -u TCC_API_KEY TCC_BASE_URL=http://127.0.0.1:$(DEMO_PORT) \
		$(DEMO_PYTHON) $(DEMO_SCRIPT); \
	if [ -t 1 ]; then \
		echo "make demo: open http://127.0.0.1:$(DEMO_PORT)/ to see the run; Ctrl-C stops the receiver"; \
	fi; \
	wait $$receiver; \
	trap - EXIT

demo-auto: $(VENV)/.installed
	@venv=$$(bash tests/genai/venv.sh openai-v2) && \
	$(MAKE) --no-print-directory demo DEMO_PYTHON=$$venv/bin/python \
		DEMO_SCRIPT=examples/auto_instrumentation/openai_agent.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

test: lint typecheck pytest

BENCH_ARGS ?=

# The benchmark's own extras (contextcompany is a contender, not a dependency of tcc_otel).
$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet contextcompany==2.0.0 \
		opentelemetry-exporter-otlp-proto-http opentelemetry-proto
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# make test-phoenix: a run exported to a real Arize Phoenix (127.0.0.1 only, gRPC off) and read
#   back through its REST API (tests_phoenix/). Optional, not in CI: Phoenix (~860 MB) gets its
#   own venv, $(PHOENIX_VENV), built on first use (~1.5 min).
PHOENIX_VENV ?= .venv-phoenix
PHOENIX_SPEC ?= arize-phoenix==20.26.1

$(PHOENIX_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet '$(PHOENIX_SPEC)' pytest -e .
	touch $@

.PHONY: test-phoenix
test-phoenix: $(PHOENIX_VENV)/.installed
	$(PHOENIX_VENV)/bin/pytest tests_phoenix

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
