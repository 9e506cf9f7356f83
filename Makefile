# wattwise: `make demo` and `make test` do all set-up on a machine with Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint format serve notebooks bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "wattwise needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned, so that no CUDA packages are pulled in by the rest
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install wattwise with its dev tools

demo: $(STAMP) ## run the main job end to end on the embedded defaults
	$(BIN)/wattwise demo

test: $(STAMP) ## run the whole test suite
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

test-fast: $(STAMP) ## unit tests only
	$(BIN)/python -m pytest tests/unit -m "not slow"

lint: $(STAMP) ## ruff check, ruff format --check, mypy, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wattwise features training serving
	$(BIN)/lint-imports

format: $(STAMP) ## apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

serve: $(STAMP) ## serve the @champion models on 127.0.0.1:3000
	$(BIN)/wattwise serve start

notebooks: $(STAMP) ## JupyterLab on the notebooks, http://127.0.0.1:8888 (installed on first use)
	@$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check 'jupyterlab>=4,<5'
	$(BIN)/jupyter lab --no-browser --ip 127.0.0.1 --port 8888 --notebook-dir notebooks --ServerApp.answer_yes=True $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP) ## run the benchmarks; JSON and markdown in benchmarks/results/ (locust installed on first use)
	@$(BIN)/python -c 'import locust' 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check 'locust==2.47.0'
	$(BIN)/python -m benchmarks.run

clean: ## remove generated data, reports and MLflow runs (keeps .venv)
	rm -rf data reports benchmarks/results
	find mlruns -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
