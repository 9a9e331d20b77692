# Every target creates the project's own virtualenv (.venv) first; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CONTROLTOWER_VENV := .venv-controltower
CONTROLTOWER_STAMP := $(CONTROLTOWER_VENV)/.installed
EMULATOR_PORT ?= 5055

.PHONY: help venv template docs lint test load-test emulator emulator-stop demo bench moto-tests lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies

template: $(STAMP)  ## write templates/*.json for every environment
	$(BIN)/backup-cfn template

docs: $(STAMP)  ## write docs/commands.md from the click commands (tests/test_docs.py fails when it is stale)
	$(BIN)/python scripts/command_reference.py

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

$(CONTROLTOWER_STAMP): requirements-controltower.txt
	$(PYTHON) -m venv $(CONTROLTOWER_VENV)
	$(CONTROLTOWER_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-controltower.txt
	touch $(CONTROLTOWER_STAMP)

lint: $(STAMP) $(CHECKOV_STAMP)  ## cfn-lint and checkov on every template; lists checkov's documented skips
	$(BIN)/backup-cfn validate
	$(CHECKOV_VENV)/bin/checkov --directory templates --framework cloudformation --compact --quiet --skip-download

test: $(STAMP) $(CONTROLTOWER_STAMP)  ## run the test suite (starts its own emulator; Control Tower's controls in their own virtualenv)
	$(BIN)/python -m pytest -q

load-test: $(STAMP)  ## 1,000 users, 20,000 objects on the emulator (~10 min); figures in bench-results/load.json
	$(BIN)/python -m pytest -q -s -m load tests/test_load.py

emulator: $(STAMP)  ## start the local AWS emulator in the background on $(EMULATOR_PORT)
	$(BIN)/backup-cfn local start --port $(EMULATOR_PORT)

emulator-stop: $(STAMP)  ## stop the local AWS emulator
	$(BIN)/backup-cfn local stop --port $(EMULATOR_PORT)

bench: $(STAMP)  ## storage, requests, hashing, end to end, template build; QUICK=1 for the small CI run
	$(BIN)/python -m backup_cfn.bench $(if $(QUICK),--quick,)

demo: $(STAMP)  ## the whole system offline: emulator, deploy (vault, primary), 1,000 users, two backups, restore, restore from the vault, verify
	$(BIN)/python -m backup_cfn.local.demo

moto-tests: $(STAMP)  ## moto's own tests of the patched services, stock then patched; fails on any the patches break
	$(BIN)/python -m backup_cfn.local.moto_suite

lock: $(STAMP)  ## re-pin requirements.txt from requirements.in
	$(BIN)/pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by \`make lock\`: every package pinned, so a fresh clone builds the same thing."; \
	  $(BIN)/pip freeze --exclude-editable; } > requirements.txt

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) $(CHECKOV_VENV) $(CONTROLTOWER_VENV) .pytest_cache .hypothesis .moto-tests build *.egg-info
