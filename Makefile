# Two entry points for a fresh machine: `make demo` and `make test`.
# The virtual environment lives outside the clone, keyed by a hash of
# requirements.txt, so a second clone or a second run installs nothing; `.venv` in
# each clone is a thin venv on top of it holding only this clone's package.
SHELL := /bin/bash
PYTHON ?= python3
REQ_HASH := $(shell sha256sum requirements.txt | cut -c1-12)
VENV_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mdr-graph
VENV := $(VENV_CACHE)/venv-$(REQ_HASH)
PY := .venv/bin/python
DEMO_OUT ?= demo-run
PYTEST_ARGS ?=

.PHONY: venv demo test bench clean

venv:
	@if [ ! -f "$(VENV)/.complete" ]; then \
	  echo "creating $(VENV) (first run only)"; \
	  rm -rf "$(VENV)"; mkdir -p "$(VENV_CACHE)"; \
	  $(PYTHON) -m venv "$(VENV)" && \
	  "$(VENV)/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt && \
	  touch "$(VENV)/.complete"; \
	else echo "reusing $(VENV)"; fi
	@# .venv is a thin per-clone venv on top of the cached one (tools/venv_overlay.py), so
	@# clones share the dependencies but never each other's code. This clone's package goes
	@# into it, editable and without dependencies: seconds, no download.
	@"$(VENV)/bin/python" tools/venv_overlay.py "$(VENV)" .venv
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null
	@.venv/bin/mdr-graph --version

demo: venv
	.venv/bin/mdr-graph demo --out $(DEMO_OUT)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .venv build *.egg-info .pytest_cache
