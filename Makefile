# Two entry points: `make demo` (the main job) and `make test`. Both create .venv
# on first use and reinstall only when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[video,dev,experiments]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/iac-jax demo --output_dir=demo_output --steps=300

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check iac_jax experiments tests benchmarks

clean:
	rm -rf $(VENV) demo_output
