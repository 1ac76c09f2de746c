# The README's two commands: `make run` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test coverage install lock check-pythons lint format messages

# The development set: requirements/dev.txt, every package pinned with its hashes (pip checks
# each download against them), then the project itself without dependencies. Production
# installs requirements/prod.txt alone (docs/operations.md "Dependencies").
$(STAMP): pyproject.toml requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m bpjsportal.launcher run

test: $(STAMP)
	$(PY) -m bpjsportal.launcher test $(ARGS)

# make test with a line-coverage report (slower: about twice the time of the CPU-bound tests)
coverage: $(STAMP)
	BPU_TEST_COVERAGE=1 $(PY) -m bpjsportal.launcher test $(ARGS)

# Re-lock after changing pyproject.toml's dependencies: both locks from pyproject.toml, with
# hashes, from PyPI alone (no local pip configuration). The versions already locked are kept;
# `make lock UPGRADE=1` moves every package to its newest allowed version (UPGRADE=Django: one).
# Then `make install` and `make check-pythons`.
LOCK_ENV := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null
LOCK_ARGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--index-url https://pypi.org/simple \
	$(if $(filter 1,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE)))
lock: $(STAMP)
	$(LOCK_ENV) $(VENV)/bin/pip-compile $(LOCK_ARGS) -o requirements/prod.txt pyproject.toml
	# --no-strip-extras: a pin such as coverage[toml]==... is one pip before 23.3 (a new venv of
	# Python 3.11/3.12) accepts in --require-hashes mode; prod.txt has none, it is a constraint
	$(LOCK_ENV) $(VENV)/bin/pip-compile $(LOCK_ARGS) --no-strip-extras --extra dev --extra local \
		-o requirements/dev.txt pyproject.toml requirements/dev.in

# Each supported Python this machine has (3.11-3.13): the production lock installs into a fresh
# virtualenv with hashes checked and the portal's `check --deploy` passes; the development
# lock resolves for it (needs PyPI). Also a test of `make test` (tests/bpjsportal/test_dependencies.py).
check-pythons: $(STAMP)
	$(PY) -m bpjsportal.launcher check-pythons

format:
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

messages:
	$(PY) manage.py makemessages -l id -l en --ignore '.venv/*' --ignore 'var/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'
