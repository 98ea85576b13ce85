# The two commands: `make demo` (set up, then walk an app from cluster A to cluster B on
# the embedded default) and `make test` (set up, lint, type-check, run every test).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint docs proto lock

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

demo: setup
	$(BIN)/vessel-embedded

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	PATH=$(BIN):$$PATH scripts/gen-proto.sh --check
	$(BIN)/python -m vessel.contracts.docs --check

test: lint
	$(BIN)/pytest -n auto --dist loadfile --durations=15

docs: setup
	$(BIN)/python -m vessel.contracts.docs

proto: setup
	PATH=$(BIN):$$PATH scripts/gen-proto.sh

# Re-resolve every dependency to the newest versions pyproject.toml allows, then set up
# again from the new lock. Commit uv.lock together with any regenerated code.
lock:
	scripts/setup.sh $(VENV) --upgrade
	touch $(VENV)/.installed
