#!/usr/bin/env bash
# Build a benchmark report from the shared reference runs and screenshot its HTML with headless Chromium.
#
#   docs/make_report_screenshot.sh                     # writes docs/report-screenshot.png
#   docs/make_report_screenshot.sh docs/demo-report.png demo-output/report/report.html   # an existing report
#
# Needs: the repo venv (.venv) with matplotlib, $THEMIS_SHARED (default ../shared) holding
# reference/evaluation_runs/, and Chromium (Debian: apt-get update && apt-get install -y chromium).
# Two reference runs are the "own" runs (full plots); the rest are comparison rows marked "(reference)".
set -euo pipefail

cd "$(dirname "$0")/.."
SHARED="${THEMIS_SHARED:-../shared}"
RUNS="$SHARED/reference/evaluation_runs"
OUT_PNG="${1:-docs/report-screenshot.png}"
HTML="${2:-}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [[ -z "$HTML" && ! -d "$RUNS" ]]; then
    echo "error: $RUNS not found (set THEMIS_SHARED to the shared material)" >&2
    exit 1
fi
CHROMIUM="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$CHROMIUM" ]]; then
    echo "error: Chromium not found (Debian: apt-get update && apt-get install -y chromium)" >&2
    exit 1
fi

if [[ -z "$HTML" ]]; then
HTML="$WORK/report/report.html"
.venv/bin/python -c '
import sys
from pathlib import Path
from themis_rm.bench.report import build_report
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
paths = build_report([runs / "Themis-RM-8B", runs / "AceCodeRM-32B"], out, reference_dir=runs)
print(paths.html)
' "$RUNS" "$WORK/report"
fi

"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/profile" --hide-scrollbars --window-size=1400,2400 \
    --screenshot="$PWD/$OUT_PNG" "file://$(realpath "$HTML")" 2>"$WORK/chromium.log" \
    || { cat "$WORK/chromium.log" >&2; exit 1; }
echo "wrote $OUT_PNG"
