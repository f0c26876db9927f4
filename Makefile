# Two commands for a newcomer: `make demo` (set up + run the demo pipeline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_CPU := torch==2.13.0

.PHONY: demo alignment test lint venv llama-cpp browser screenshots clean

venv: $(VENV)/.installed

# The marker depends on pyproject.toml, so a dependency change reinstalls.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# Without CUDA, install the CPU build of torch first (it lies on local disk here), so the
	@# project's torch range is already satisfied and pip never pulls a multi-GB CUDA build.
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e '.[models,train,default-model,quant,embed,ray,view,hub,mlflow,wandb,safety,dev]'
	touch $@

# llama.cpp (the llama_cpp backend and the gguf export): llama-cpp-python builds from source
# (about 5 minutes the first time; pip caches the wheel), then llama.cpp's converters are extracted
# from the same version's sdist beside the venv and its llama-imatrix and llama-quantize tools are
# built from it (about 3 minutes the first time; kept in ~/.cache/harness/llama.cpp-tools).
llama-cpp: $(VENV)/.llama-cpp

$(VENV)/.llama-cpp: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[llama-cpp]'
	$(PY) scripts/install_llama_cpp_converter.py
	touch $@

demo: venv llama-cpp
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

# The alignment loop (models/alignment.yaml): constitution-labelled pairs checked against human
# labels, a reward model and DPO on them, evaluated with the reward model and sequence KL.
alignment: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/alignment.sh

# The browser tests load the report in headless Chromium: install Debian's chromium when it is
# missing and we can (root with apt-get, as in CI); otherwise those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "chromium is not installed and can't be installed here: the browser tests will be skipped"

# Style and complexity (ruff, rules in pyproject.toml) and types on the public seams (mypy: the
# backends, scorers, task kinds, store and model catalogue). Part of `make test`.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: venv llama-cpp browser lint
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

# Screenshots of the demo report and of every `harness view` page at desktop and phone widths
# (docs/screenshots), after `make demo`.
screenshots: venv browser
	$(PY) scripts/report_screenshots.py
	$(PY) scripts/view_screenshots.py

clean:
	rm -rf .harness
