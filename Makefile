# The two commands a newcomer needs: `make run` (the demo stack) and `make test` (the whole suite).
# Both do their own set-up (Debian packages, TimescaleDB, .venv) and are idempotent.
.PHONY: run test lint bootstrap down bench

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@.venv/bin/luciole demo $(DEMO_ARGS)

test: bootstrap lint
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/mypy

down:
	@.venv/bin/luciole stack down

bench: bootstrap
	@.venv/bin/python bench/codec.py
