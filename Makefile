# Two commands do everything (see README.md):
#   make book   execute every notebook on $(PROFILE) (default quick) and build the HTML book in _build/html
#   make test   the whole test suite: pytest, then the smoke book executed, built and checked in a browser
# Both create .venv from the pinned requirements.txt when it is missing (or older than the pins) and
# reuse it when present. On a machine with a GPU:
#   make gpu10  train every run of the gpu10 profile (ci/train_profile.py), then `make book PROFILE=gpu10`
#   make paper  the same for the paper profile; run it again after an interruption and it resumes
# FRESH=1 recomputes every result and retrains every run, whatever is stored (make book FRESH=1).
# OVERRIDES="--override KEY=VALUE ..." goes to the training and the notebooks: the profile with overrides is a
# variant with its own results/<profile>+<overrides>-<hash>/ (make clean-variants removes them); ALLOW_CPU=1 lets a GPU
# profile train and execute on the CPU (shrink it with OVERRIDES, and point CLORG_RUNS and CLORG_RESULTS
# at a scratch folder so the real profile's runs and results stay untouched).

PROFILE ?= quick
PYTHON ?= python3.11
OVERRIDES ?=
ALLOW_CPU ?=
FRESH ?=
CPU_FLAG := $(if $(ALLOW_CPU),--allow-cpu)
FRESH_FLAG := $(if $(FRESH),--fresh)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test pytest book execute build-book check-site lock clean clean-variants gpu10 paper

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "clorg needs Python 3.11 (the torch wheels are built for it); set PYTHON=/path/to/python3.11")' \
		|| { echo "Python 3.11 not found as '$(PYTHON)': install it or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest
	$(MAKE) book PROFILE=smoke
	$(MAKE) check-site

pytest: $(STAMP)
	$(PY) -m pytest

book: execute build-book

execute: $(STAMP)
	$(PY) ci/execute_notebooks.py --profile $(PROFILE) $(OVERRIDES) $(CPU_FLAG) $(FRESH_FLAG)

build-book: $(STAMP)
	$(PY) ci/build_book.py --profile $(PROFILE) $(OVERRIDES)

check-site: $(STAMP)
	$(PY) ci/check_site.py _build/html

gpu10 paper: $(STAMP)
	$(PY) ci/train_profile.py --profile $@ $(OVERRIDES) $(CPU_FLAG) $(if $(FRESH),--force)
	@# FRESH= : the runs were trained (or found finished) just above; the results that read them are
	@# recomputed where they changed, and the training chapter must not retrain them a second time
	$(MAKE) book PROFILE=$@ FRESH=

lock: $(STAMP)
	$(PY) ci/lock.py

clean:
	rm -rf build _build

# removes the results, runs and build folders of profile variants (overrides), listing each
clean-variants: $(STAMP)
	$(PY) ci/clean_variants.py
