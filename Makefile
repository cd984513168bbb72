# MSP Billing — the two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test chaos bench install migrate clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m msp_billing.run_local

test: $(STAMP)
	$(PY) -m pytest

chaos: $(STAMP)
	$(PY) -m pytest tests/chaos -m chaos -s

bench: $(STAMP)
	$(PY) -m bench

migrate: $(STAMP)
	$(PY) manage.py migrate_schemas

clean:
	rm -rf $(VENV) var
