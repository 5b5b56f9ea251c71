# `make demo` and `make test` set up .venv from scratch on a machine with only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo lint test test-slow bench figures playground clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,experiments]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python experiments/circles.py --out results/circles

# The playground in the browser: a local server on 127.0.0.1:8050 (python -m fnn.playground --help).
playground: $(STAMP)
	$(BIN)/python -m fnn.playground

lint: $(STAMP)
	$(BIN)/ruff check fnn
	$(BIN)/ruff format --check fnn
	$(BIN)/pyright

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

# The checks marked slow (each a minute or more of fresh processes); CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m slow || [ $$? -eq 5 ]  # 5: none marked slow

# The bench (about 10 minutes), then its tables into README.md's Performance section.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python experiments/readme_figures.py --run bench
	cat results/bench/summary.txt

# Rerun the experiments the READMEs quote into experiments/results, then write their figures into the READMEs.
figures: $(STAMP)
	$(BIN)/python experiments/readme_figures.py --run

clean:
	rm -rf $(VENV) results .pytest_cache *.egg-info
