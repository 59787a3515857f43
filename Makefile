# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
MODELS_DIR ?= models
NAME ?= movielens
DATASET ?= ml-100k

.PHONY: run install fetch train serve test lint clean

run: install fetch
	@# Train only when no version exists yet; `make train` always makes a new one.
	@ls -d $(MODELS_DIR)/$(NAME)/[0-9]* >/dev/null 2>&1 || $(MAKE) --no-print-directory train
	$(BIN)/recsys serve --models-dir $(MODELS_DIR) --name $(NAME)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

fetch: install
	$(BIN)/recsys fetch $(DATASET) --data-dir $(DATA_DIR)

train: install fetch
	$(BIN)/recsys train --dataset $(DATASET) --data-dir $(DATA_DIR) --name $(NAME) --models-dir $(MODELS_DIR)

serve: install
	$(BIN)/recsys serve --models-dir $(MODELS_DIR) --name $(NAME)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app training
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
