# One command sets everything up and runs the demo; one runs the tests. Both self-install.
VENV ?= .venv
PY := $(VENV)/bin/python
ACCELC := $(VENV)/bin/accelc
PYTHON ?= python3

.PHONY: install demo test test-fast lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# Pinned first: a bare torch requirement would pull a multi-GB CUDA build.
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(ACCELC) compile examples/lenet/lenet.pt --target fpga --input-shape 1,1,28,28 -o build/lenet-fpga
	$(ACCELC) verify build/lenet-fpga --random 32
	$(PY) examples/digits/evaluate.py

test: install
	$(VENV)/bin/pytest -n 2 -q

test-fast: install
	$(VENV)/bin/pytest -n 2 -q -m "not slow"

# import-linter reads one package tree; accelc's is three folders (pyproject package-dir), so the contracts run
# on a copy with backends/ and hls/ placed inside accelc/ (import names unchanged; nothing is executed).
LINT_TREE := build/import-graph
lint: install
	$(VENV)/bin/ruff check .
	rm -rf $(LINT_TREE) && mkdir -p $(LINT_TREE)
	cp -r compiler $(LINT_TREE)/accelc && cp -r backends $(LINT_TREE)/accelc/backends && cp -r hls $(LINT_TREE)/accelc/hls
	cd $(LINT_TREE) && PYTHONPATH=. $(abspath $(VENV))/bin/lint-imports $(CURDIR)/pyproject.toml --no-cache

clean:
	rm -rf build accelc-out
