# `make lint` runs ruff as CI does; `make run` starts the whole service on its embedded defaults; `make test` runs the suite;
# `make bench` measures it (PostgreSQL and Redis on loopback; see docs/PERFORMANCE.md); `make bench-peer` against
# django-post-office.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lint run test bench bench-peer messages

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

run: install
	$(BIN)/python scripts/run.py

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-peer: install
	$(BIN)/python -m bench.peer $(BENCH_ARGS)

# Translations: refresh locale/*/LC_MESSAGES/django.po from the templates and code (a new
# language: make messages LOCALE=fr), then compile the .mo files, which are committed so that
# a machine without GNU gettext runs the service. Needs gettext (apt-get install gettext).
messages: install
	$(BIN)/python manage.py makemessages $(if $(LOCALE),--locale $(LOCALE),--all) \
	  --ignore 'var/*' --ignore 'tests/*' --ignore 'bench/*' --ignore 'scripts/*'
	$(BIN)/python manage.py compilemessages --ignore '.venv/*'
