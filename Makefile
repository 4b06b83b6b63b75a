# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install the pinned dependencies.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKENDS ?= jax tensorflow torch
PYTEST_ARGS ?=
STAMP := $(VENV)/.tiedae-installed

.PHONY: demo test bench install clean

install: $(STAMP)

# Re-install only when the pins or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP)
	$(VENV)/bin/tiedae demo

# One pytest process per backend (Keras picks its backend at import time).
# The three run side by side, each logging to .test-logs/BACKEND.log; the logs
# are printed in order once all have finished. TEST_JOBS=1 runs them in turn.
TEST_JOBS ?= 3
test: $(STAMP)
	@mkdir -p .test-logs; \
	run() { KERAS_BACKEND=$$1 $(PY) -m pytest -p no:cacheprovider --basetemp=.test-logs/tmp-$$1 $(PYTEST_ARGS) > .test-logs/$$1.log 2>&1; echo $$? > .test-logs/$$1.rc; }; \
	if [ "$(TEST_JOBS)" = 1 ]; then for b in $(BACKENDS); do run $$b; done; \
	else for b in $(BACKENDS); do run $$b & done; wait; fi; \
	failed=""; \
	for b in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$b (exit $$(cat .test-logs/$$b.rc)) ==="; cat .test-logs/$$b.log; \
		[ "$$(cat .test-logs/$$b.rc)" = 0 ] || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "all backends passed: $(BACKENDS)"

BENCH_STAMP := $(VENV)/.tiedae-bench-installed
$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	$(PY) -m pip install --quiet -r requirements-bench.lock -c requirements.lock
	touch $@

bench: $(BENCH_STAMP)
	dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || apt-get install -y dataset-fashion-mnist \
		|| (apt-get update && apt-get install -y dataset-fashion-mnist)
	$(PY) -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
