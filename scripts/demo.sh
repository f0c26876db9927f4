#!/usr/bin/env bash
# The demo pipeline on the embedded default model: validate, build, run, noise, report, gate.
# Succeeds when every step ran and the gate reached a verdict (pass 0, fail 1 or inconclusive 3:
# on the demo's small samples some rules can't be decided, and the gate says so); fails on any
# earlier error and when the gate itself can't be evaluated (2). The verdicts also go to
# .harness/reports/demo-gate.{md,xml,json}, as a CI job would keep them.
set -euo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
harness validate
harness build models/demo.yaml
harness run suites/mmlu_sample.yaml suites/brand_voice.yaml suites/production.yaml suites/safety.yaml --models models/demo.yaml
# int8's answers move with the batch they are scored in: measure how far, so the gate can say when
# a margin lies inside that band
harness noise suites/mmlu_sample.yaml --models models/demo.yaml --variant brand-dpo-int8
# People rate a random slice of the DPO variant's tweets on the judged dimensions, and the gate's
# calibrated rule corrects the judge with them. The demo has no people: scripts/demo_reviewer.py
# is a stand-in that rates from the rubric checks each tweet passes (fill the sheet by hand instead)
harness review export --task brand_tweets --variant brand-dpo -n 8 --out .harness/reports/demo-review.csv
python scripts/demo_reviewer.py .harness/reports/demo-review.csv
harness review import .harness/reports/demo-review.csv
# This demo run's results as a release: the report's trend reads the demo's tagged runs
harness tag reports/demo.yaml "demo-$(date -u +%Y%m%dT%H%M%S)"
harness report reports/demo.yaml
set +e
harness gate reports/demo.yaml --markdown .harness/reports/demo-gate.md --junit .harness/reports/demo-gate.xml \
    --json .harness/reports/demo-gate.json
code=$?
set -e
# A sequential gate on one suite: MMLU items in a seeded random order (20, 30, then all 40) until its rule
# is decided (0 pass, 1 fail, 3 undecided when the items run out)
set +e
harness run suites/mmlu_sample.yaml --models models/demo.yaml --until-decided reports/demo-sequential.yaml
sequential=$?
set -e
[ "${sequential}" -ne 2 ] || { echo "the sequential gate could not be evaluated" >&2; exit 2; }
# Which export of the DPO variant ships: each candidate gated against it (0 chosen, 1 none, 3 undecided)
set +e
harness ship sweeps/demo.yaml
ship=$?
set -e
[ "${ship}" -ne 2 ] || { echo "harness ship could not be evaluated" >&2; exit 2; }
verdict=$(case "${code}" in 0) echo pass;; 1) echo fail;; 3) echo inconclusive;; *) echo "could not be evaluated";; esac)
echo "demo finished in $(( $(date +%s) - start ))s; gate verdict: ${verdict} (exit code ${code})"
[ "${code}" -ne 2 ]
