# Two entry points: `make report` (the main job) and `make test` (what CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
JOBS ?= 2

.PHONY: setup report experiments tables book test pdf clean

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $@

setup: $(VENV)/.installed

# Runs whose outputs are up to date are skipped, so an interrupted report resumes.
experiments: setup
	$(BIN)/nextloc search --jobs $(JOBS)
	$(BIN)/nextloc run --jobs $(JOBS)

tables: setup
	$(BIN)/nextloc tables

book: setup
	$(BIN)/jupyter-book build . -W --keep-going

report: experiments tables book
	@echo "The report is in _build/html/index.html"

# The report (nextloc.pdf) and the run pages (nextloc-runs.pdf) as A4 PDFs in _build/pdf/
# (needs Chromium: apt-get install chromium).
pdf: book
	$(PY) -m nextloc.report.pdf

test: setup
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider
	$(BIN)/jupyter-book build . -W --keep-going

clean:
	rm -rf _build runs/quick .cache
