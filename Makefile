# MSP Billing — the two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test chaos bench install migrate clean

# pip says only what went wrong: its notices and warnings go to .venv/install.log, shown on failure.
PIP := PIP_ROOT_USER_ACTION=ignore PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --quiet \
	--disable-pip-version-check --no-warn-script-location

$(PY):
	@echo "Creating .venv …"
	@$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PIP) --upgrade pip 2>$(VENV)/install.log || (cat $(VENV)/install.log; exit 1)

$(STAMP): pyproject.toml | $(PY)
	@echo "Installing MSP Billing and its dependencies into .venv (a few minutes the first time) …"
	@$(PIP) -e '.[test]' 2>>$(VENV)/install.log || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)
	@echo "  done"

install: $(STAMP)

run: $(STAMP)
	@$(PY) -m msp_billing.run_local

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

.PHONY: citus-proof
# The full proof on a local Citus cluster (scripts/citus-cluster builds Citus once under var/).
citus-proof: $(STAMP)
	$(PY) -m pytest tests/scale -m citus_proof -s
