# `make run` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two installs into the one environment, each stamped: `make run` installs what running needs (the base and the
# server extra), `make test` the development tools on top (the dev extra, which holds every extra). Either order
# works: the test install stamps both, as it holds what running needs.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The tools' install, for the targets that need them.
STAMP := $(TEST_STAMP)
# The outbox page's browser test drives Debian's Chromium (no browser download); root needs no sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint docs bench compat caniemail clean postgresql

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(TEST_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	GATEWAY_ENV=$${GATEWAY_ENV:-development} $(BIN)/mail-gateway serve

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

test: $(TEST_STAMP)
	command -v chromium >/dev/null || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)
	@command -v swaks >/dev/null || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq swaks) \
		|| echo "swaks could not be installed with apt-get; the tests that use it are skipped"
	# axe-core, which the inbox page's accessibility test injects (tests/package.json pins it).
	command -v npm >/dev/null || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q npm)
	npm ci --prefix tests --no-audit --no-fund --silent
	$(MAKE) --no-print-directory postgresql
	$(MAKE) --no-print-directory docs
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The documentation site, into site/ (git ignores it); --strict turns every warning, such as a broken link or a
# page missing from the nav, into an error.
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The store's shared suite, the scale-out tests and `make bench` start private PostgreSQL clusters of Debian's server.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql)

# A full run takes several minutes and writes benchmarks/RESULTS.md; BENCH_QUICK=1 for a quick look,
# BENCH_ARGS for more options (python -m benchmarks.run --help).
bench: $(TEST_STAMP) postgresql
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Flask-Mail's and flask-mailman's own test suites against MailGateway, from checkouts of their tagged sources:
# COMPAT_ARGS="--flask-mailman DIR --flask-mail DIR" (python -m benchmarks.upstream_suites --help).
compat: $(TEST_STAMP)
	$(BIN)/python -m benchmarks.upstream_suites $(COMPAT_ARGS)

# The outbox checks' HTML and CSS support data (gateway/outbox/checks/data/): caniemail.com's, refreshed from the
# caniemail package on npm (needs npm); the tests read the copy in the repository.
caniemail: $(RUN_STAMP)
	$(BIN)/python -m mail_gateway.outbox.checks.refresh_dataset

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
