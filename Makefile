# `make run` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The outbox page's browser test drives Debian's Chromium (no browser download); root needs no sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench compat clean postgresql

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	GATEWAY_ENV=$${GATEWAY_ENV:-development} $(BIN)/mail-gateway serve

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	command -v chromium >/dev/null || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)
	@command -v swaks >/dev/null || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq swaks) \
		|| echo "swaks could not be installed with apt-get; the tests that use it are skipped"
	$(MAKE) --no-print-directory postgresql
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The store's shared suite, the scale-out tests and `make bench` start private PostgreSQL clusters of Debian's server.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql)

# A full run takes several minutes and writes benchmarks/RESULTS.md; BENCH_QUICK=1 for a quick look,
# BENCH_ARGS for more options (python -m benchmarks.run --help).
bench: $(STAMP) postgresql
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Flask-Mail's and flask-mailman's own test suites against MailGateway, from checkouts of their tagged sources:
# COMPAT_ARGS="--flask-mailman DIR --flask-mail DIR" (python -m benchmarks.upstream_suites --help).
compat: $(STAMP)
	$(BIN)/python -m benchmarks.upstream_suites $(COMPAT_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
