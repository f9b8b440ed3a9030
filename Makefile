# Two commands a new user needs: `make report` and `make test`. Both build .venv/ on first use
# and reuse it afterwards (the stamp file is only rebuilt when the pins change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: report test lab lint sample clean-venv lock

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

report: $(STAMP)
	$(BIN)/python -m analysis report --data data/sample

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check analysis tests tools benchmarks
	$(BIN)/ruff format --check analysis tests tools benchmarks

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

sample: $(STAMP)
	$(BIN)/python -m analysis sample --out data/sample

# Re-pin every transitive dependency after changing pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | sort > requirements.lock

clean-venv:
	rm -rf $(VENV)
