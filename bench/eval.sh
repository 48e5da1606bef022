#!/usr/bin/env bash
# The labelled real-data evaluation (TARGETS.md, accuracy): every case of
# ../shared/datasets/labelled-network/truth.json ingested into a store of
# its own and hunted; the rank and score of each expected finding, the
# high findings on benign cases, recall and precision, written between
# the markers of docs/evaluation.md. Re-run whenever a detector changes;
# internal/app's TestEvaluation holds the same floors in CI.
#
# usage: bench/eval.sh [TRUTH.json]   (default ../shared/datasets/labelled-network/truth.json)
set -euo pipefail
cd "$(dirname "$0")/.."
truth=${1:-${DWELL_DATASETS:-../shared/datasets}/labelled-network/truth.json}
if [ ! -f "$truth" ]; then
	echo "bench/eval.sh: no truth file at $truth (set DWELL_DATASETS or name one)" >&2
	exit 1
fi
mkdir -p bench/out
go build -o bench/out/dwell ./cmd/dwell
bench/out/dwell eval --markdown docs/evaluation.md "$truth"
