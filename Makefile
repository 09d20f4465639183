# The two commands: `make demo` and `make test`. Also `make lint` and `make bench`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKG_FILES := $(wildcard */pyproject.toml)
# Every folder with a pyproject.toml is one of the project's packages; one pip call installs them
# all (editable, with their `test` extra), so local dependencies such as fortnox-client resolve
# from the repo, not PyPI.
PKG_DIRS  := $(patsubst %/pyproject.toml,%,$(PKG_FILES))

.PHONY: install test test-packages lint demo bench clean dist tenants-up tenants-down

install: $(STAMP)

$(STAMP): requirements-dev.txt $(PKG_FILES)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt $(foreach d,$(PKG_DIRS),-e './$(d)[test]')
	touch $(STAMP)

# Two workers (the CI machine's two cores; most tests wait on sandboxes, Meltano and rate limits),
# a test file's tests kept together: conftest.py. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

# Each package's tests alone, as its maintainer runs them: in the package folder, without the root
# conftest.py (--confcutdir=.), one package after the other; the shared fixtures come from the
# packages' pytest plugins (sandbox.pytest_plugin, sync_common.testing.smtp).
# tests/test_package_tests.py checks the same within `make test`, without running the tests.
test-packages: install
	$(foreach d,$(PKG_DIRS),(cd $(d) && ../$(BIN)/pytest tests --confcutdir=. -p no:cacheprovider -q $(PYTEST_ARGS)) &&) true

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sandbox/sandbox $(wildcard fortnox-client/fortnox_client moment-client/moment_client sync-common/sync_common sync-operator/sync_operator moment-webhooks/moment_webhooks orchestrator/moment_fortnox_orchestrator) bench

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python bench/run.py

# Three tenants on Dagster on this machine: PostgreSQL, the sandboxes (one Fortnox host with three
# companies, one Moment with three), a webhook receiver per tenant and dagster-daemon, under
# output/tenants (orchestrator/README.md). `make tenants-down` stops them.
TENANTS_ROOT ?= output/tenants
tenants-up: install
	MELTANO_SEND_ANONYMOUS_USAGE_STATS=false $(BIN)/meltano install
	$(BIN)/moment-fortnox-orchestrator local up --root $(TENANTS_ROOT)

tenants-down:
	$(BIN)/moment-fortnox-orchestrator local down --root $(TENANTS_ROOT)

# An sdist and a wheel of every package (the wheel built from the sdist, as `python -m build`
# does), with uv's PEP 517 frontend and hatchling in an isolated build environment. README "Add to
# your own Meltano project", CHANGELOG.md.
dist: install
	rm -rf dist
	$(foreach d,$(PKG_DIRS),$(BIN)/uv build --quiet --out-dir dist ./$(d) &&) true

clean:
	rm -rf $(VENV) .meltano output .pytest_cache
