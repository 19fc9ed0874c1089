# The two commands of the README: `make run` (a shipped scenario on the embedded model) and `make test`.
VENV ?= .venv
SCENARIO ?= scenarios/wargame/neutral.yaml
STAMP := $(VENV)/.agentsim-installed

.PHONY: setup run test lint bench

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
