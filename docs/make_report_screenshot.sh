#!/usr/bin/env bash
# Screenshot a benchmark report's HTML with headless Chromium.
#
#   docs/make_report_screenshot.sh                     # reference runs' report -> docs/report-screenshot.png
#   docs/make_report_screenshot.sh OUT.png REPORT.html # the top of an existing report
#   docs/make_report_screenshot.sh OUT.png REPORT.html run-1-tables
#       # from the element with that id to the end (run 1's robustness, diagnostics and plots, then the
#       # best-of-N section), the page's own CSS kept; `make report-screenshot` does this for the demo report
#
# Needs: the repo venv (.venv) with matplotlib, $THEMIS_SHARED (default ../shared) holding
# reference/evaluation_runs/ when no report is given, and Chromium (Debian: apt-get install -y chromium).
# Two reference runs are the "own" runs (full plots); the rest are comparison rows marked "(reference)".
set -euo pipefail

cd "$(dirname "$0")/.."
SHARED="${THEMIS_SHARED:-../shared}"
RUNS="$SHARED/reference/evaluation_runs"
OUT_PNG="${1:-docs/report-screenshot.png}"
HTML="${2:-}"
FROM_ID="${3:-}"
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

HEIGHT=2400
if [[ -n "$FROM_ID" ]]; then
    # A page holding the report's head and everything from the element with id FROM_ID on; a tall window,
    # cropped below to where the page ends.
    .venv/bin/python -c '
import re, sys
from pathlib import Path
page, anchor = Path(sys.argv[1]).read_text(encoding="utf-8"), sys.argv[2]
start = re.search(r"<(h[1-6])[^>]*\bid=\"%s\"" % re.escape(anchor), page)
if start is None:
    sys.exit(f"error: {sys.argv[1]} has no heading with id={anchor!r}")
head, end = page[: page.index("<main>") + len("<main>")], page.rindex("</main>")
Path(sys.argv[3]).write_text(head + "\n" + page[start.start() : end] + page[end:], encoding="utf-8")
' "$HTML" "$FROM_ID" "$WORK/excerpt.html"
    HTML="$WORK/excerpt.html"
    HEIGHT=9000
fi

"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/profile" --hide-scrollbars --window-size=1400,$HEIGHT --virtual-time-budget=5000 \
    --screenshot="$WORK/shot.png" "file://$(realpath "$HTML")" 2>"$WORK/chromium.log" \
    || { cat "$WORK/chromium.log" >&2; exit 1; }

# Crop the empty page background under the content (the excerpt's tall window) and write an optimised PNG.
.venv/bin/python -c '
import sys
import numpy as np
from PIL import Image
image = Image.open(sys.argv[1]).convert("RGB")
pixels = np.asarray(image)
background = pixels[-1, 0]
rows = np.nonzero((pixels != background).any(axis=(1, 2)))[0]
bottom = min(pixels.shape[0], int(rows[-1]) + 24) if rows.size else pixels.shape[0]
image.crop((0, 0, image.width, bottom)).save(sys.argv[2], optimize=True)
' "$WORK/shot.png" "$(realpath -m "$OUT_PNG")"
echo "wrote $OUT_PNG"
