# The README's quickstart: `make serve` and `make test` both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE ?= 1
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# llama-cpp-python is built once into WHEELS and installed from there. The default flags
# build for any x86-64 with AVX2 rather than for this exact CPU: a native build on CPUs with
# AMX compiles llama.cpp's AMX kernels, which crash in prompt processing. For a GPU build
# set e.g. LLAMA_CMAKE_ARGS="-DGGML_CUDA=on" (and use another WHEELS folder).
WHEELS ?= $(HOME)/.cache/offramp/wheels
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' constraints.txt)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEEL := $(WHEELS)/.llama-cpp-python-$(LLAMA_VERSION).built

.PHONY: setup serve test lint typecheck unit bench clean browser promtool

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel

$(LLAMA_WHEEL): | $(BIN)/python  # named by version: built once per version, not per clone
	mkdir -p $(WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-cache-dir \
		--no-deps -w $(WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	touch $(LLAMA_WHEEL)

# Idempotent: reinstalls only when the project's requirements change.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt $(LLAMA_WHEEL)
	$(BIN)/python -m pip install --quiet -c constraints.txt --find-links $(WHEELS) -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall \
		$(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	touch $(STAMP)

setup: $(STAMP)

serve: setup
	$(BIN)/offramp serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy src tests bench

# The parity report and the console are checked in a real headless browser (Debian's
# Chromium; the console's tests drive it through chromedriver).
browser:
	@(command -v chromium && command -v chromedriver) >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# The alert rules are checked and unit-tested with promtool (Debian's prometheus package).
promtool:
	@command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq prometheus)

test: lint typecheck browser promtool
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
