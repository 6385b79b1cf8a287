# The two commands of the README: `make run` and `make test`. Each creates the virtual
# environment on first use (pinned by requirements.lock) and then does its job.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1

.PHONY: run test lint viz install clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run $(ARGS)

test: lint
	$(BIN)/python -m pytest $(ARGS)

# style, and the architecture's import contracts (pyproject.toml, [tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache

viz: $(STAMP)
	$(BIN)/kedro viz run --no-browser

clean:
	rm -rf $(VENV)
