# The two commands of the README: `make run` (a shipped scenario on the embedded model) and `make test`.
VENV ?= .venv
SCENARIO ?= scenarios/wargame/neutral.yaml
STAMP := $(VENV)/.agentsim-installed

.PHONY: setup run test lint bench mutation mutation-issue

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/agentsim run $(SCENARIO)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check agentsim tests

bench: $(STAMP)
	$(VENV)/bin/agentsim bench vllm --model tiny

# Mutation testing of the modules that compute the studies' numbers (tests/mutation/modules.toml), one module after
# the other; prints killed / timeout / survived / no tests / equivalent and the score per module. Not part of
# `make test` (it takes about two hours on 2 cores). MODULES=wargame makes one module; ARGS=--report re-tabulates.
mutation: $(STAMP)
	$(VENV)/bin/python scripts/mutation.py $(ARGS) $(MODULES)

# The faults of issue 16, each applied by hand to a copy of the tree: every test listed for it must fail (minutes).
mutation-issue: $(STAMP)
	$(VENV)/bin/python scripts/mutation.py --issue
