# Two commands on a fresh machine with only Python 3.11+: `make serve` and `make test`; and
# `make demo` for a first call with no vendor keys.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per kind of install: serving needs the runtime only, the demo adds the official
# SDKs, tests and lint add the dev tools.
RUNTIME := $(VENV)/.installed-runtime
DEMO := $(VENV)/.installed-demo
DEV := $(VENV)/.installed-dev
PORT ?= 8080

.PHONY: install serve demo ready test lint bench bench-compare clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@echo "==> creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	@echo "==> installing the gateway's runtime dependencies into $(VENV) (a minute or two the first time)"
	@$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEMO): pyproject.toml | $(BIN)/python
	@echo "==> installing the gateway and the official anthropic/openai SDKs into $(VENV) (a minute or two the first time)"
	@$(BIN)/python -m pip install --quiet -e '.[demo]'
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	@echo "==> installing the gateway and the dev tools (pytest, mypy, ruff, SDKs) into $(VENV) (two minutes or so the first time)"
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(DEV) $(DEMO) $(RUNTIME)

install: $(DEV)

serve: $(RUNTIME)
	$(BIN)/ainfera migrate
	$(BIN)/ainfera serve

# The upstream simulator, the gateway, a tenant, an agent, a key and real SDK calls, with no
# vendor keys and no network; the gateway keeps serving until Ctrl-C (DEMO_FLAGS=--no-wait
# ends after the tour).
demo: $(DEMO)
	$(BIN)/ainfera demo $(DEMO_FLAGS)

# Waits until a gateway on 127.0.0.1:$(PORT) answers /readyz (standard library only, so it
# works while `make serve` is still installing).
ready:
	@$(PYTHON) -c 'exec("import time, urllib.request as u\nfor _ in range(600):\n try:\n  u.urlopen(\"http://127.0.0.1:$(PORT)/readyz\", timeout=2); print(\"gateway ready on 127.0.0.1:$(PORT)\"); break\n except Exception:\n  time.sleep(1)\nelse:\n raise SystemExit(\"no gateway answered on 127.0.0.1:$(PORT)/readyz within 10 minutes\")")'

test: $(DEV)
	$(BIN)/pytest

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# `make bench BENCH_ARGS=--quick` (or bench-compare) is a smoke test of the harness, not figures.
BENCH_ARGS ?=

bench: $(DEV)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The peer, LiteLLM, in a venv of its own under bench/ (gitignored) so the gateway's never sees
# its ~750 MB of dependencies; every version pinned in bench/litellm-requirements.txt. Only
# bench-compare needs it: make test and make bench never do.
LITELLM_VENV := bench/.litellm-venv
LITELLM_STAMP := $(LITELLM_VENV)/.installed

$(LITELLM_STAMP): bench/litellm-requirements.txt
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet -r bench/litellm-requirements.txt
	@touch $(LITELLM_STAMP)

bench-compare: $(DEV) $(LITELLM_STAMP)
	$(BIN)/python -m bench --litellm $(LITELLM_VENV)/bin/litellm $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LITELLM_VENV) var .pytest_cache .mypy_cache .ruff_cache \
		.import_linter_cache .hypothesis *.egg-info build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
