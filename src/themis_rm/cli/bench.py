"""``themis bench`` (and ``bench summarize``), ``themis rerank`` and ``themis report``: evaluation commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from themis_rm.bench.config import BenchConfig, RerankConfig
from themis_rm.cli.base import console, fail, friendly_errors, progress_bar, wide_console
from themis_rm.cli.options import config_command

bench_app = typer.Typer(help="CodeRewardBench-style evaluation with reference-compatible outputs.")


def _bench(config: BenchConfig) -> None:
    """Benchmark a reward model on preference pairs: scores.parquet, results.json and run.json."""
    from themis_rm.bench.run import BenchInterrupted, run_bench

    try:
        with progress_bar("benchmark pairs") as (set_total, advance):
            result = run_bench(config, on_loaded=set_total, progress=advance)
    except BenchInterrupted as stopped:
        console.print(f"[yellow]{stopped}[/yellow]", highlight=False)
        raise typer.Exit(130) from None
    overall, run = result.results["overall"], result.run
    console.print(
        f"accuracy {overall['accuracy']:.2%} over {overall['total_examples']} pairs "
        f"(ties {run['n_ties']}, NaN {run['n_nan']}, truncated {run['n_truncated_pairs']} "
        f"(prompt cut in {run['n_prompt_truncated_pairs']}), identical {run['n_identical_pairs']} "
        f"({'dropped' if run['identical'] == 'drop' else 'kept'}), "
        f"resumed {run['resumed_pairs']}); {run['pairs_per_s'] or 0:.1f} pairs/s -> {result.output}"
    )
    console.print(_diagnostics_line(run["diagnostics"], result.output), highlight=False)
    wide_console().print(_accuracy_table(result.results))
    if run.get("robustness"):
        wide_console().print(_robustness_table(result.results, run["robustness"]))
    if run.get("sandbox_hack_suite"):
        from themis_rm.sandbox.check import describe

        console.print(describe(run["sandbox_hack_suite"]), highlight=False)


bench_app.callback(invoke_without_command=True)(config_command(BenchConfig, _bench, on_error=fail, group=True))


def _diagnostics_line(d: dict, output: Path) -> str:
    """ROC-AUC, ECE, the accuracy CI, null-baseline flags and steerability, in one line."""
    low, high = d["accuracy_ci95"]
    parts = [
        f"ROC-AUC {d['roc_auc']:.3f}" if d["roc_auc"] is not None else "ROC-AUC —",
        f"ECE {d['ece']:.3f}" if d["ece"] is not None else "ECE —",
        f"95% CI [{low:.1%}, {high:.1%}]" if low is not None else "",
    ]
    flags = d["baseline_flags"]
    parts.append(f"[yellow]{flags} null-baseline flags[/yellow]" if flags else "no null-baseline flags")
    if d.get("mean_diagonal_advantage") is not None:
        parts.append(f"steerability {100 * d['mean_diagonal_advantage']:+.1f} points")
    return "diagnostics: " + ", ".join(p for p in parts if p) + f" ({output / d['file']})"


def _accuracy_table(results: dict) -> Table:
    table = Table(title="accuracy by aspect")
    for column in ("aspect", "accuracy", "pairs"):
        table.add_column(column, justify="left" if column == "aspect" else "right")
    for name, row in results["by_aspect"].items():
        table.add_row(name, f"{row['accuracy']:.2%}", str(row["count"]))
    return table


def _robustness_table(results: dict, robustness: dict) -> Table:
    table = Table(title=f"robustness (clean accuracy {results['overall']['accuracy']:.2%})")
    for column in ("perturbation", "side", "accuracy", "drop", "unchanged pairs"):
        table.add_column(column, justify="left" if column in ("perturbation", "side") else "right")
    for kind, row in robustness.items():
        table.add_row(kind, row["side"], f"{row['accuracy']:.2%}", f"{row['drop']:+.2%}", str(row["unchanged_pairs"]))
    return table


@bench_app.command("summarize")
def bench_summarize(
    scores: Annotated[Path, typer.Argument(help="A scores.parquet in the reference format.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write results.json.")],
    ties: Annotated[str, typer.Option(help="wrong (reference) or half.")] = "wrong",
    layout: Annotated[
        str,
        typer.Option(
            "--format",
            help="The results.json layout of the script that wrote the scores: standard (scalar RMs, CE-RM, "
            "Nemotron-GenRM, ours), r3 (parse_failed columns) or lmunit (a score of 0 is a parse failure).",
        ),
    ] = "standard",
) -> None:
    """Recompute results.json from a scores file (byte-identical with the reference for all 51 of its runs)."""
    from themis_rm.atomic import refuse_overwrite
    from themis_rm.bench.metrics import summarize_scores_file, write_results_json

    with friendly_errors():
        refuse_overwrite({"--output": output}, {"SCORES": scores})
        write_results_json(summarize_scores_file(scores, ties=ties, layout=layout), output)
    console.print(f"wrote {output}")


def _rerank(config: RerankConfig) -> None:
    """Best-of-n reranking: Hits@K, Spearman with pass rate, reward variance, averaged over questions."""
    from themis_rm.bench.rerank import run_rerank

    with progress_bar("scoring completions") as (set_total, advance):
        result = run_rerank(config, on_loaded=set_total, progress=advance)
    overall = result.results["overall"]
    hits = ", ".join(f"{key} {value}" for key, value in overall.items() if key.startswith("hits_at_"))
    console.print(
        f"{overall['n_questions']} questions: {hits}; spearman mean {overall['spearman_mean']} -> {result.output}"
    )
    curve = result.best_of_n["overall"]
    points = zip(curve["n"], curve["model"], curve["oracle"], curve["random"], strict=True)
    console.print(
        "best-of-N pass (model/oracle/random): " + "; ".join(f"N={n} {m:.3f}/{o:.3f}/{r:.3f}" for n, m, o, r in points)
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


rerank = config_command(RerankConfig, _rerank, on_error=fail)


def report(
    run_dirs: Annotated[
        list[Path] | None, typer.Argument(help="Benchmark run directories (results.json + scores.parquet).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Report directory.")] = Path("report"),
    reference_dir: Annotated[
        Path | None, typer.Option(help="Directory of reference runs to show beside yours.")
    ] = None,
    rerank: Annotated[
        list[Path] | None,
        typer.Option(help="A themis rerank output directory: its best-of-N curves (repeatable, e.g. per criterion)."),
    ] = None,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for 95% confidence intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Markdown and self-contained HTML report with plots and bootstrap confidence intervals."""
    from themis_rm.bench.report import build_report

    with friendly_errors():
        paths = build_report(
            run_dirs or [],
            output,
            reference_dir=reference_dir,
            rerank_dirs=rerank or [],
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    console.print(f"report: {paths.html} ({len(paths.pngs)} plots), {paths.markdown}")
