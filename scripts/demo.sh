#!/usr/bin/env bash
# The demo pipeline on the embedded default model: validate, build, run, report, gate.
# Succeeds when every step ran and the gate reached a verdict (pass 0, fail 1 or inconclusive 3:
# on the demo's small samples some rules can't be decided, and the gate says so); fails on any
# earlier error and when the gate itself can't be evaluated (2). The verdicts also go to
# .harness/reports/demo-gate.{md,xml,json}, as a CI job would keep them.
set -euo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
harness validate
harness build models/demo.yaml
harness run suites/mmlu_sample.yaml suites/brand_voice.yaml suites/production.yaml --models models/demo.yaml
harness report reports/demo.yaml
set +e
harness gate reports/demo.yaml --markdown .harness/reports/demo-gate.md --junit .harness/reports/demo-gate.xml \
    --json .harness/reports/demo-gate.json
code=$?
set -e
verdict=$(case "${code}" in 0) echo pass;; 1) echo fail;; 3) echo inconclusive;; *) echo "could not be evaluated";; esac)
echo "demo finished in $(( $(date +%s) - start ))s; gate verdict: ${verdict} (exit code ${code})"
[ "${code}" -ne 2 ]
