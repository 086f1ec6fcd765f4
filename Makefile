# The two commands in the README: `make run` and `make test`. Everything installs into .venv from the
# pinned set in requirements.lock, so a fresh machine gets the same packages as CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint check bench bench-admin clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[dev]'
	touch $@

install: $(BIN)/.installed

# The runner is exec'd, so it is make's own child: make passes SIGTERM on to it, and it watches make for a
# SIGINT sent to make alone (config/embedded.py). It prints the admin's address and the login last.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --quiet-login
	exec $(BIN)/python -m config.embedded

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

check: install
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

# Prints each benchmark's table and JSON (see the README's "Benchmarks" section).
bench: install
	$(BIN)/python bench/push.py --orders 1000
	$(BIN)/python bench/coalescing.py --edits 100
	$(BIN)/python bench/backfill.py --sizes 5000 20000
	$(BIN)/python bench/admin_overhead.py --saves 200
	$(BIN)/python bench/pull.py --invoices 10000 100000
	$(BIN)/python bench/drain.py --orders 2000
	$(BIN)/python bench/refunds.py --refunds 1000
	$(BIN)/python bench/books_check.py

# Every staff page at 100,000 sales (issue 17): seeds the empty PostgreSQL database DATABASE_URL names and
# leaves it in place (README, "Staff pages").
bench-admin: install
	$(BIN)/python bench/admin_scale.py --sales 100000

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
