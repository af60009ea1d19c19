# The README's two commands: `make demo` and `make test`. Both work from a fresh clone on Debian 12.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest dovecot chromium faults bench clean model

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || $(MAKE) --no-print-directory apt PKG=python3-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) run_pipeline.py demo

# The tagger shipped inside the package (triage/tag/model/<key>.tar.gz), so a new install
# tags at once instead of training first. Rerun after changing triage/tag/data or the
# [tagger] theme names, seed or epochs in config/themes.toml (tests/test_shipped_model.py
# fails until then). Deterministic: the same data gives the same bytes.
model: $(STAMP)
	$(PY) run_pipeline.py --config config/pipeline.toml train --ship

test: $(STAMP) dovecot chromium lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) dovecot chromium
	$(PY) -m pytest

# The IMAP tests run against a real Dovecot; a missing server is an error, never a skip.
dovecot:
	@test -x /usr/sbin/dovecot || command -v dovecot >/dev/null 2>&1 || \
	  $(MAKE) --no-print-directory apt PKG=dovecot-imapd

# The digest is checked in a real browser: headless Chromium renders it and takes a screenshot.
chromium:
	@command -v chromium >/dev/null 2>&1 || $(MAKE) --no-print-directory apt PKG=chromium

apt:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PKG); \
	else \
	  echo "missing Debian package $(PKG): run 'sudo apt-get install $(PKG)' and retry" >&2; exit 1; \
	fi

# The full fault-injection and fuzzing counts (make test runs a reduced count); prints the
# table the README's "Reliability" section shows.
faults: $(STAMP) dovecot
	FAULT_FULL=1 FUZZ_EXAMPLES=5000 $(PY) -m pytest tests/test_faults.py tests/test_fuzz.py

bench: $(STAMP) dovecot
	$(PY) bench/intake_bench.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
