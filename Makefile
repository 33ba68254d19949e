# The two commands in README.md: `make demo` and `make test`. Each does all set-up itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test setup data bench gpu-check clean

# setuptools prints a boxed notice on every editable install of a package-dir layout (gdnet's
# gdnet.backends lives in backends/, so a meta path finder maps it): it needs no action, so the
# install filters that one message out
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

# virtual environment with gdnet (editable), the test tools, and PyTorch's CPU build for the
# comparison tests
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || { command -v apt-get >/dev/null 2>&1 && rm -rf $(VENV) && \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(QUIET_EDITABLE) $(PY) -m pip install -q -e '.[tests,distributed]' torch==2.13.0
	touch $(STAMP)

# Fashion-MNIST from Debian's dataset-fashion-mnist package, where apt is there
data:
	@if [ ! -e $(DATA_DIR)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	fi

setup: $(STAMP) data

# the lowest versions pyproject.toml allows, in their own environment, on a smoke of the suite
FLOORS_VENV := .venv-floors
FLOORS_SMOKE := tests/test_ops.py tests/test_nn.py tests/test_checkpoint.py tests/test_fit.py

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q
	$(PY) scripts/floors.py $(FLOORS_VENV) $(FLOORS_SMOKE)

demo: setup
	$(VENV)/bin/gdnet train --dataset fashion-mnist --hidden 100 --epochs 10 --backend auto \
		--checkpoint-dir runs/demo --plot runs/demo/curves.png

bench: setup
	$(PY) benchmarks/mlp.py

gpu-check:
	bash scripts/gpu-check.sh

clean:
	rm -rf $(VENV) $(FLOORS_VENV) build *.egg-info .pytest_cache .ruff_cache
