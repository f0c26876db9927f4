#!/usr/bin/env bash
# The demo pipeline on the embedded default model: validate, build, run, report, gate.
# Exits with the gate's code (0 pass, 1 fail, 2 error); any earlier failure stops it.
set -euo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
harness validate
harness build models/demo.yaml
harness run suites/mmlu_sample.yaml suites/brand_voice.yaml suites/production.yaml --models models/demo.yaml
harness report reports/demo.yaml
set +e
harness gate reports/demo.yaml
code=$?
set -e
echo "demo finished in $(( $(date +%s) - start ))s; gate exit code ${code}"
exit "${code}"
