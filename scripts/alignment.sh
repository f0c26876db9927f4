#!/usr/bin/env bash
# The alignment loop on the embedded default model: build models/alignment.yaml (the AI judge labels
# pairs by the constitution after its agreement with the human labels is checked; a reward model and
# DPO train on the labels), evaluate with suites/alignment.yaml, report and gate reports/alignment.yaml.
set -euo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
harness build models/alignment.yaml
harness run suites/alignment.yaml --models models/alignment.yaml
harness report reports/alignment.yaml
set +e
harness gate reports/alignment.yaml
code=$?
set -e
echo "alignment loop finished in $(( $(date +%s) - start ))s; gate exit code ${code}"
[ "${code}" -ne 2 ]
