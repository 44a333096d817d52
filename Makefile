# Two entry points for a newcomer: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint repro dvc-yaml install clean browser

# Create the venv and install pinned dependencies (pip takes torch from the machine's local wheels).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default (sklearn digits + photo patches): no data files needed.
run: $(STAMP)
	$(BIN)/fsmc run

# Headless Chromium renders the benchmark report in a test (Debian's package; apt needs root or sudo).
browser:
	@command -v chromium >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Lint (ruff; rules and line length in pyproject.toml), also the first step of test and test-fast.
lint: $(STAMP)
	$(BIN)/ruff check .

# The whole test suite on two pytest-xdist workers, one torch thread each (two 2-thread workers on 2 cores made
# torch's OpenMP threads spin against each other: 7x slower); a file's tests stay together, in order. The 25
# slowest tests are listed at the end, so a slow newcomer shows in CI's log.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

# The edit loop: unit and model tests without servers or minutes-long training (CI runs `make test`).
# Runs without ../shared too: the CIFAR-10 tests then skip, naming the files they need.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	FSMC_TESTS_SKIP_MISSING_DATA=1 $(BIN)/python -m pytest -m "not integration and not slow"

# Reproduce the DVC pipeline into data/ (stages call the same workers as the flow).
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# dvc.yaml is rendered from the stage declarations (fsmc/stage_io.py, fsmc/workspace.py): rerun after editing them.
dvc-yaml: $(STAMP)
	$(BIN)/python -m fsmc.dvc_yaml

clean:
	rm -rf runs .prefect data/few_shot data/ood data/validate data/teacher data/compress data/recover data/evaluate
