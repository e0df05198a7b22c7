"""The static analysers as pairwise judges on real preference pairs, per criterion and language.

For every pair of the shared CodeRewardBench-schema files ($THEMIS_SHARED/data/pairs) whose criterion a static
analyser speaks to — ``security`` on Security_Hardness, ``lint`` and ``complexity`` on
Readability_Maintainability — both sides are analysed (one batch per cell) and the pair is counted right when
the chosen side's value is higher (ties split). A pair with a side the tool cannot parse (fragments are common:
SafeCoder pairs are single functions cut from files) is counted as unscored. In the same run, the baseline
"the longer side wins" on the same scored pairs, and each tool's wall time per program.

    .venv/bin/python benchmarks/bench_static.py            # all cells
    .venv/bin/python benchmarks/bench_static.py --limit 40 # the first 40 pairs of each cell
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

from themis_rm.reward.groups import extract_program
from themis_rm.reward.static import ANALYZERS, analyse

JUDGES = {"Security_Hardness": ("security",), "Readability_Maintainability": ("lint", "complexity")}


def load_cells(shared: Path, limit: int | None) -> dict[tuple[str, str], list[dict]]:
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted((shared / "data" / "pairs").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["aspect"] in JUDGES and (limit is None or len(cells[row["aspect"], row["language"]]) < limit):
                cells[row["aspect"], row["language"]].append(row)
    return cells


def split_accuracy(outcomes: list[float]) -> float | None:
    return sum(outcomes) / len(outcomes) if outcomes else None


def judge(analyzer: str, language: str, pairs: list[dict]) -> dict:
    chosen = [extract_program(p["chosen"]) for p in pairs]
    rejected = [extract_program(p["rejected"]) for p in pairs]
    started = time.perf_counter()
    results = analyse(analyzer, chosen + rejected, [language] * (2 * len(pairs)))
    seconds = time.perf_counter() - started
    wins, longer = [], []
    for i in range(len(pairs)):
        good, bad = results[i].value, results[len(pairs) + i].value
        if good is None or bad is None:
            continue
        wins.append(1.0 if good > bad else 0.5 if good == bad else 0.0)
        longer.append(1.0 if len(chosen[i]) > len(rejected[i]) else 0.5 if len(chosen[i]) == len(rejected[i]) else 0.0)
    return {
        "pairs": len(pairs),
        "scored": len(wins),
        "accuracy": split_accuracy(wins),
        "ties": sum(w == 0.5 for w in wins) / len(wins) if wins else None,
        "longer_wins": split_accuracy(longer),
        "ms_per_program": 1000 * seconds / (2 * len(pairs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.environ.get("THEMIS_SHARED", "../shared"))
    parser.add_argument("--limit", type=int, help="Pairs per (criterion, language) cell.")
    parser.add_argument("--output", help="Write the rows as JSON here too.")
    args = parser.parse_args()
    rows = []
    for (aspect, language), pairs in sorted(load_cells(Path(args.shared), args.limit).items()):
        for analyzer in JUDGES[aspect]:
            if language in ANALYZERS[analyzer]:
                rows.append(
                    {"aspect": aspect, "language": language, "analyzer": analyzer, **judge(analyzer, language, pairs)}
                )
    print(
        "| criterion | language | analyser | pairs | scored | accuracy (ties split) | ties | longer wins | ms/program |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    for r in rows:
        print(
            f"| {r['aspect']} | {r['language']} | {r['analyzer']} | {r['pairs']} | {r['scored']} | "
            f"{fmt(r['accuracy'])} | {fmt(r['ties'])} | {fmt(r['longer_wins'])} | {r['ms_per_program']:.0f} |"
        )
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
