"""Composite rewards against their parts on the demo's held-out HumanEval lists (reference + verified mutants).

Each list's reward sees the first half of the problem's tests (the visible ones); the oracle is every test. For
the reward model alone, the visible tests alone, static analysis alone, the composite and the composite with a
cascade (tests only for the reward model's top 2), prints Hits@1 (ties split), Spearman with the oracle pass rate,
sandboxed runs per list (and those the cascade saved) and wall time, all in one run on the same lists and model.

    .venv/bin/python benchmarks/bench_composite.py --model demo-output/train     # builds the lists
    .venv/bin/python benchmarks/bench_composite.py --model demo-output/train \
        --lists demo-output/mutate/heldout_rerank.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from themis_rm.reward.evaluate import VARIANTS, evaluate_variants, load_oracle_lists
from themis_rm.sandbox import SandboxLimits, isolation


def build_lists(directory: Path, problems: int, seed: int) -> Path:
    """The demo's mutate step (same settings): verified mutants of HumanEval problems, split by problem."""
    from themis_rm.data.bugs import MutateConfig, run_mutation

    run_mutation(
        MutateConfig(
            output=directory, limit=problems, max_mutants_per_problem=4, seed=seed, limits=SandboxLimits(5, cpu_s=5)
        )
    )
    return directory / "heldout_rerank.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A reward model directory (the demo's: demo-output/train).")
    parser.add_argument("--lists", help="heldout_rerank.jsonl with tests (default: build them as the demo does).")
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--visible", type=float, default=0.5, help="Share of each problem's tests the reward sees.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt-pack", default="open", help="The pack the model was trained with (the demo: open).")
    args = parser.parse_args()
    lists_path = Path(args.lists) if args.lists else build_lists(Path(tempfile.mkdtemp()), args.problems, args.seed)
    lists = load_oracle_lists(lists_path, args.visible)
    completions = sum(len(g.completions) for g in lists.groups)
    print(f"{len(lists.groups)} lists, {completions} completions; {isolation().describe()}")
    execution = {"workers": args.workers, "timeout_s": 3}
    results = evaluate_variants(lists, VARIANTS, model=args.model, prompt_pack=args.prompt_pack, execution=execution)
    base = results["composite"]["seconds"]
    header = ("variant", "Hits@1", "Spearman", "runs/list", "saved/list", "s", "vs composite")
    print(f"{header[0]:20s} " + " ".join(f"{h:>{w}s}" for h, w in zip(header[1:], (7, 9, 10, 11, 7, 13), strict=True)))
    for name, row in results.items():
        ratio = row["seconds"] / base if base else float("nan")
        print(
            f"{name:20s} {row['hits_at_1']!s:>7s} {row['spearman_mean']!s:>9s} {row['runs_per_list']:>10.2f} "
            f"{row['runs_saved_per_list']:>11.2f} {row['seconds']:>7.1f} {ratio:>12.2f}x"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
