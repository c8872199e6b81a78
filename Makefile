# The two commands of the README:
#   make demo  — set up, then run the real ingest flow against the bundled offline outlets
#                into an embedded PostgreSQL (or $NEWSETL_DATABASE_URL)
#   make test  — set up, then run the test suite (uses $TEST_DATABASE_URL when set, else an
#                embedded PostgreSQL of its own)
# For people working on the code: make test-fast — the quick tier, pytest -m "not slow".
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast install clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/newsetl demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV)
