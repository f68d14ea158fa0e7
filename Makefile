# The two commands of the README, and a few helpers. Everything runs from .civicflow/venv.
VENV := .civicflow/venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench ui clean

install:
	@bin/bootstrap

run: install  ## the main job: embedded PostGIS, demo city, every asset
	$(BIN)/civicflow run

test:  ## the whole test suite against real PostGIS and the real data in ../shared
	@bin/bootstrap --test
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project/models

bench: install
	$(BIN)/python bench/ingest.py

clean:
	-$(BIN)/civicflow ckan stop
	-$(BIN)/civicflow db stop
	rm -rf .civicflow dbt_project/target
