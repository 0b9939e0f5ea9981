# Two commands on a fresh machine with only Python 3.11+: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench bench-compare clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/ainfera migrate
	$(BIN)/ainfera serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# `make bench BENCH_ARGS=--quick` (or bench-compare) is a smoke test of the harness, not figures.
BENCH_ARGS ?=

bench: $(STAMP)
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

bench-compare: $(STAMP) $(LITELLM_STAMP)
	$(BIN)/python -m bench --litellm $(LITELLM_VENV)/bin/litellm $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LITELLM_VENV) var .pytest_cache .mypy_cache .ruff_cache
