"""Oracle-verified pairs on HumanEval: pairs per hour and the yield of every operator, per criterion.

Runs ``themis data mutate``'s oracles (runtime, memory, readability over the 164 problems; security over the
seed tasks; with ``--languages all`` the C and JavaScript seed programs too) with the given workers, and prints
for each operator how many rewrites were tried, kept, and rejected (tests failed / not measurably worse), then
the wall time and pairs per hour.

    .venv/bin/python benchmarks/bench_oracles.py --workers 2
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from themis_rm.data.bugs import MutateConfig, run_mutation
from themis_rm.sandbox import isolation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criteria", default="runtime,memory,security,readability")
    parser.add_argument("--limit", type=int, default=None, help="First N HumanEval problems (default: all 164).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", type=int, default=2, help="Rewrites tried per problem and criterion.")
    parser.add_argument("--languages", default="Python", help="Python, C, JavaScript (comma list) or all.")
    parser.add_argument("--security-pairs", help="Also verify these CodeRewardBench security pairs (e.g. SafeCoder).")
    args = parser.parse_args()
    print(isolation().describe())
    output = Path(tempfile.mkdtemp())
    config = MutateConfig(
        output=output,
        criteria=tuple(args.criteria.split(",")),
        limit=args.limit,
        workers=args.workers,
        oracle_variants=args.variants,
        languages=tuple(args.languages.split(",")),
        security_pairs=Path(args.security_pairs) if args.security_pairs else None,
    )
    started = time.perf_counter()
    stats = run_mutation(config)
    seconds = time.perf_counter() - started
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, count in stats.items():
        match = re.fullmatch(r"(\w+):(tried|kept|rejected_\w+):(\w+)", key)
        if match:
            criterion, outcome, operator = match.groups()
            table[(criterion, operator)][outcome] += count
    print(f"{'criterion':28s} {'operator':28s} {'tried':>6s} {'kept':>5s} {'yield':>6s}  rejected")
    for (criterion, operator), row in sorted(table.items()):
        tried, kept = row.get("tried", 0), row.get("kept", 0)
        rejected = {k.removeprefix("rejected_"): v for k, v in row.items() if k.startswith("rejected_")}
        print(f"{criterion:28s} {operator:28s} {tried:>6d} {kept:>5d} {kept / tried if tried else 0:>6.0%}  {rejected}")
    pairs = stats["train_pairs"] + stats["heldout_pairs"]
    print(f"languages: {stats['languages']}")
    print(f"{pairs} pairs in {seconds:.0f} s with {args.workers} workers: {pairs / seconds * 3600:.0f} pairs/hour")
    print(json.dumps({"seconds": round(seconds, 1), "pairs": pairs, "stats": stats}))


if __name__ == "__main__":
    main()
