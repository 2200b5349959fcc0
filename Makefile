# `make run` serves the demo site with its task worker; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The first Python 3.12 or newer found by name (pyenv's versions included).
PYTHON ?= $(shell for c in python3.12 python3.13 python3.14 python3 \
	$(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3); do \
	$$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 \
	&& { echo $$c; break; }; done)

.PHONY: help run test bench lint format migrate install install-dev clean

help:
	@echo "make run    set up, migrate and serve the site with its task worker on PORT ($(PORT))"
	@echo "make test   run the test suite (DATABASE_URL picks the database; SQLite by default)"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make lint   ruff check and format check"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "Python 3.12 or newer is needed and none was found (tried python3.12, python3.13, python3)."; \
		echo "Install one (for example: apt-get install python3.12, or pyenv install 3.12) and run make again."; \
		exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

.env:
	cp .env.example .env
	@echo "Wrote .env from .env.example (DEBUG=true, development settings)."

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

run: migrate
	@PORT=$(PORT) BIN=$(BIN) bash bin/serve

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python bench/ingest.py
	@for b in bench/deliver.py bench/dashboard.py bench/outbound.py; do \
		if [ -f $$b ]; then $(BIN)/python $$b || exit 1; fi; done

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var
