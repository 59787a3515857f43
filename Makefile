# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
MODELS_DIR ?= models
NAME ?= movielens
DATASET ?= ml-100k
# `make test` runs in this many processes (pytest-xdist, a module per process at a time);
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

.PHONY: run install fetch train serve test test-fast lint audit lock clean

run: install fetch
	@# Train only when no version exists yet; `make train` always makes a new one.
	@ls -d $(MODELS_DIR)/$(NAME)/[0-9]* >/dev/null 2>&1 || $(MAKE) --no-print-directory train
	$(BIN)/recsys serve --models-dir $(MODELS_DIR) --name $(NAME)

install: $(VENV)/.installed

# Every dependency at the release pinned in constraints.txt (`make lock` re-pins them).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

fetch: install
	$(BIN)/recsys fetch $(DATASET) --data-dir $(DATA_DIR)

train: install fetch
	$(BIN)/recsys train --dataset $(DATASET) --data-dir $(DATA_DIR) --name $(NAME) --models-dir $(MODELS_DIR)

serve: install
	$(BIN)/recsys serve --models-dir $(MODELS_DIR) --name $(NAME)

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The inner loop (under a minute): no process-starting (integration) or slow tests.
test-fast: install
	$(BIN)/pytest -m "not integration and not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict app artifact recsys_client
	$(BIN)/mypy training cli loop
	$(BIN)/hadolint Dockerfile

# Known advisories for the pinned releases; fails only on one that has a fixed release.
audit: install
	$(BIN)/python scripts/audit.py constraints.txt

# Resolve pyproject.toml's dependencies afresh (newest allowed releases) and pin them all.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	{ echo "# Every dependency of recsys[dev], pinned: \`make lock\` writes it, \`make install\` and"; \
	  echo "# the Dockerfile install with it (pip -c). Python 3.11, Linux x86-64."; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
