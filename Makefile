# The README's two commands: `make run` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test coverage install lock lint format messages

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
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

# Re-lock after changing pyproject.toml dependencies.
lock:
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

format:
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

messages:
	$(PY) manage.py makemessages -l id -l en --ignore '.venv/*' --ignore 'var/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'
