# genstack: the two set-up commands are `make demo` and `make test`.
# Each works alone on a fresh machine with Python 3.11 and pip.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.genstack-installed
PYTEST_ARGS ?=

.PHONY: install browser demo test test-unit bench clean

install: $(STAMP)

# torch first and pinned: 2.13.0 resolves to the CPU build; an unpinned torch
# (pulled in by sentence-transformers) would fetch a multi-GB CUDA build.
# llama-cpp-python builds from source once; pip caches the wheel.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: install
	@echo "== the bundled models"
	$(BIN)/genstack models list
	@echo "== one answer, greedy (the same every run)"
	$(BIN)/genstack generate "What is the capital of France?" --greedy --max-tokens 32
	@echo "== documents in, grounded answers out: the sample corpus, three questions"
	$(BIN)/genstack demo
	@echo "== a classic task"
	$(BIN)/genstack task sentiment "I love using Generative AI"

# The web UI tests drive Debian's chromium with Playwright (never a browser download).
# As root with apt (CI, containers) it is installed here; otherwise install it yourself.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "error: the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Exit code 5 (no tests collected) is a failure: a suite that runs nothing is broken.
test: install browser
	GENSTACK_REQUIRE_BROWSER=1 $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/generation.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
