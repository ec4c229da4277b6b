# The README's two commands. Each builds .venv and the Debian packages it needs on first use.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.narvox-installed
SIZE   ?= mini
NJ     ?= 2

.PHONY: demo test system-deps clean-venv

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[cpu,train,dev]'
	touch $@

system-deps:
	bash tools/install_system_deps.sh

demo: $(STAMP) system-deps
	$(PYTHON) -m narvox demo --size $(SIZE) --nj $(NJ)

test: $(STAMP)
	bash tools/install_system_deps.sh --test
	$(PYTHON) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
