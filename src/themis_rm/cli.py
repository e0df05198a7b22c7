"""The ``themis`` command line: thin typer commands over the job functions, with rich progress and summaries."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from themis_rm.data.cli import data_app  # light: its commands import the pipeline lazily
from themis_rm.errors import ThemisError
from themis_rm.serve.cli import serve as serve_command  # light: imports the serve extra only when run
from themis_rm.train.cli import train as train_command  # light: imports torch/accelerate only when run

app = typer.Typer(
    name="themis",
    help="Multi-criteria code reward models: score, bench, train, serve, data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

PromptsOption = Annotated[
    str | None,
    typer.Option(
        "--prompts",
        help="Prompt pack: 'official' (Themis strings, fetched and verified), 'open' (ours), or a JSON "
        "file in the layout of themis_system_prompts.json. Default: $THEMIS_PROMPTS, then 'official'.",
    ),
]
PromptOverflowOption = Annotated[
    str,
    typer.Option(
        "--prompt-overflow",
        help="When a prompt leaves no room for the response: 'truncate' (keep half the budget "
        "for the response, cut the end of the prompt; counted) or 'error'.",
    ),
]
AdapterOption = Annotated[
    str,
    typer.Option(
        "--adapter",
        help="How the model yields a reward: seqcls (default), head (custom scalar head, needs "
        "--adapter-spec), lm-logprob (a causal LM's log p(yes) - log p(no) where it answers a question).",
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="auto (shared-prefix KV reuse when it saves tokens; packed varlen rows on CUDA+flash-attn; else "
        "length-sorted padded batches), prefix, packed or padded; all give the plain forward's scores.",
    ),
]
AdapterSpecOption = Annotated[
    str | None,
    typer.Option(
        "--adapter-spec",
        help="JSON file: head spec (pooling, head, weights, ...) or logprob spec (question, suffix, yes, no, "
        "attributes with weights; see the README).",
    ),
]
CriteriaFileOption = Annotated[
    Path | None,
    typer.Option("--criteria-file", help="TOML with user-defined [[criteria]] (key, title, text, aliases)."),
]


def _version_callback(value: bool) -> None:
    if value:
        from themis_rm import __version__

        typer.echo(f"themis-rm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each phase.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _wide_console() -> Console:
    """Stdout console; 120 columns when not a terminal (logs, CI) so tables are not cut."""
    plain = Console()
    return plain if plain.is_terminal else Console(width=120)


@contextmanager
def _friendly_errors():
    """Our own errors print as one red line and exit 2, without a traceback."""
    try:
        yield
    except ThemisError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def progress_bar(description: str):
    """A rich progress bar; yields (set_total, advance) callbacks for the library's loops."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)
        yield (lambda total: progress.update(task, total=total)), (lambda n: progress.advance(task, n))


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Reward model: hub id or local directory.")],
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Pairs or responses: .jsonl/.json/.parquet/.csv, a save_to_disk directory, or a hub dataset id.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scores: .jsonl (settings beside it) or .json.")],
    criterion: Annotated[
        str,
        typer.Option(
            help="Criteria: a name or alias (runtime, security, ...), a comma list, "
            "'full', 'none', or 'aspect' (each row's own aspect)."
        ),
    ] = "none",
    prompts: PromptsOption = None,
    criteria_file: CriteriaFileOption = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")] = "auto",
    max_length: Annotated[int, typer.Option(help="Token budget per sequence; responses are cut first.")] = 4096,
    prompt_overflow: PromptOverflowOption = "truncate",
    adapter: AdapterOption = "seqcls",
    adapter_spec: AdapterSpecOption = None,
    engine: EngineOption = "auto",
    batch_tokens: Annotated[int | None, typer.Option(help="Padded tokens per forward pass.")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a dataset directory or hub id.")] = None,
    id_field: Annotated[str, typer.Option("--id-field")] = "id",
    prompt_field: Annotated[str, typer.Option("--prompt-field")] = "prompt",
    chosen_field: Annotated[str, typer.Option("--chosen-field")] = "chosen",
    rejected_field: Annotated[str, typer.Option("--rejected-field")] = "rejected",
    response_field: Annotated[str, typer.Option("--response-field")] = "response",
    aspect_field: Annotated[str, typer.Option("--aspect-field")] = "aspect",
    skip_invalid: Annotated[bool, typer.Option(help="Count and report bad rows instead of failing.")] = False,
) -> None:
    """Score responses (or chosen and rejected of each pair) with a reward model under chosen criteria."""
    from themis_rm.pairs import FieldMap
    from themis_rm.scoring.job import ScoreConfig, run_score

    fields = FieldMap(
        id=id_field,
        prompt=prompt_field,
        chosen=chosen_field,
        rejected=rejected_field,
        response=response_field,
        aspect=aspect_field,
    )
    config = ScoreConfig(
        model=model,
        input=input,
        output=output,
        criterion=criterion,
        prompts=prompts,
        criteria_file=criteria_file,
        dtype=dtype,
        device=device,
        max_length=max_length,
        prompt_overflow=prompt_overflow,
        adapter=adapter,
        adapter_spec=adapter_spec,
        engine=engine,
        batch_tokens=batch_tokens,
        fields=fields,
        split=split,
        skip_invalid=skip_invalid,
    )
    with _friendly_errors(), progress_bar("scoring") as (set_total, advance):
        summary = run_score(config, on_loaded=set_total, progress=advance)
    console.print(
        f"scored {summary.rows} rows ({summary.sequences} sequences) in {summary.seconds:.1f} s: "
        f"{summary.rows_per_s:.1f} rows/s; truncated {summary.truncated} (prompt cut in {summary.prompt_truncated}), "
        f"skipped {summary.skipped} "
        f"-> {summary.output}"
    )


app.add_typer(data_app, name="data")
app.command(name="train")(train_command)
app.command(name="serve")(serve_command)

bench_app = typer.Typer(help="CodeRewardBench-style evaluation with reference-compatible outputs.")
app.add_typer(bench_app, name="bench")
ListOption = Annotated[list[str] | None, typer.Option(help="Keep only these values (repeatable).")]


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Reward model: hub id or local directory.")] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Pairs: local file/directory or hub id "
            "(project-themis/Themis-CodeRewardBench with --config/--split Full)."
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run directory (resumable).")] = None,
    prompt_mode: Annotated[
        str,
        typer.Option("--prompts-mode", help="aspect (each pair's own aspect prompt), full, none, or criteria names."),
    ] = "aspect",
    prompts: PromptsOption = None,
    criteria_file: CriteriaFileOption = None,
    max_length: Annotated[int, typer.Option(help="Token budget per sequence; responses are cut first.")] = 4096,
    prompt_overflow: PromptOverflowOption = "truncate",
    adapter: AdapterOption = "seqcls",
    adapter_spec: AdapterSpecOption = None,
    engine: EngineOption = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    batch_tokens: Annotated[int | None, typer.Option(help="Padded tokens per forward pass.")] = None,
    ties: Annotated[str, typer.Option(help="wrong (reference: ties count as errors) or half.")] = "wrong",
    limit: Annotated[int | None, typer.Option(help="Score only the first N selected pairs.")] = None,
    subset: ListOption = None,
    language: ListOption = None,
    aspect: ListOption = None,
    split: Annotated[str | None, typer.Option(help="Dataset split.")] = None,
    config: Annotated[str | None, typer.Option("--config", help="Hub dataset config.")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Pairs scored between two checkpoint writes.")] = 256,
    judge_url: Annotated[str | None, typer.Option(help="--adapter judge: OpenAI-compatible API root (…/v1).")] = None,
    judge_parser: Annotated[str, typer.Option(help="--adapter judge: boxed, json or last_number.")] = "boxed",
    judge_template: Annotated[str | None, typer.Option(help="--adapter judge: str.format template file.")] = None,
    judge_concurrency: Annotated[int, typer.Option(help="--adapter judge: requests in flight.")] = 8,
    judge_temperature: Annotated[
        float, typer.Option(help="--adapter judge: sampling temperature; 0 for reproducible scores.")
    ] = 0.0,
    judge_seed: Annotated[
        int | None, typer.Option(help="--adapter judge: the request's seed (vLLM honours it per request).")
    ] = 0,
    judge_max_tokens: Annotated[
        int, typer.Option(help="--adapter judge: generation cap; too low cuts the answer before its score.")
    ] = 2048,
    judge_score_range: Annotated[
        str,
        typer.Option(
            help="--adapter judge: valid scores 'LOW,HIGH' inclusive (e.g. '0,10' for a 0-10 judge), or 'none'; "
            "a score outside is NaN and counted."
        ),
    ] = "1,10",
    perturb: Annotated[
        str | None,
        typer.Option(
            help="Judge-hacking perturbations to score too (comma list or "
            "'all'): self_praise, fake_tests, rename_identifiers, whitespace, "
            "docstring_inflation, swap_comments."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the perturbations.")] = 0,
) -> None:
    """Benchmark a reward model on preference pairs: scores.parquet, results.json and run.json."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None or data is None or output is None:
        console.print("[red]error:[/red] themis bench needs --model, --data and --output")
        raise typer.Exit(2)
    from themis_rm.bench.run import BenchConfig, run_bench

    bench_config = BenchConfig(
        model=model,
        data=data,
        output=output,
        prompt_mode=prompt_mode,
        prompts=prompts,
        criteria_file=criteria_file,
        max_length=max_length,
        prompt_overflow=prompt_overflow,
        adapter=adapter,
        adapter_spec=adapter_spec,
        engine=engine,
        dtype=dtype,
        device=device,
        batch_tokens=batch_tokens,
        ties=ties,
        limit=limit,
        subsets=subset or (),
        languages=language or (),
        aspects=aspect or (),
        split=split,
        config=config,
        chunk_pairs=checkpoint_every,
        judge_url=judge_url,
        judge_parser=judge_parser,
        judge_template=judge_template,
        judge_concurrency=judge_concurrency,
        judge_temperature=judge_temperature,
        judge_seed=judge_seed,
        judge_max_tokens=judge_max_tokens,
        judge_score_range=judge_score_range,
        perturb=tuple(perturb.split(",")) if perturb else (),
        seed=seed,
    )
    with _friendly_errors(), progress_bar("benchmark pairs") as (set_total, advance):
        result = run_bench(bench_config, on_loaded=set_total, progress=advance)
    overall, run = result.results["overall"], result.run
    console.print(
        f"accuracy {overall['accuracy']:.2%} over {overall['total_examples']} pairs "
        f"(ties {run['n_ties']}, NaN {run['n_nan']}, truncated {run['n_truncated_pairs']} "
        f"(prompt cut in {run['n_prompt_truncated_pairs']}), "
        f"resumed {run['resumed_pairs']}); {run['pairs_per_s'] or 0:.1f} pairs/s -> {result.output}"
    )
    _wide_console().print(_accuracy_table(result.results))
    if run.get("robustness"):
        _wide_console().print(_robustness_table(result.results, run["robustness"]))


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
) -> None:
    """Recompute results.json from a scores file (byte-identical with the reference for its own runs)."""
    from themis_rm.bench.metrics import summarize_scores_file, write_results_json

    with _friendly_errors():
        write_results_json(summarize_scores_file(scores, ties=ties), output)
    console.print(f"wrote {output}")


@app.command()
def rerank(
    model: Annotated[str, typer.Option(help="Reward model: hub id or local directory.")],
    data: Annotated[str, typer.Option(help="Questions with completions and test results (rerank schema).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run directory.")],
    criterion: Annotated[str, typer.Option(help="Criteria for the system prompt, or none.")] = "none",
    prompts: PromptsOption = None,
    k: Annotated[list[int] | None, typer.Option("--k", help="Hits@K cut-offs (repeatable); default 5 and 10.")] = None,
    max_length: Annotated[int, typer.Option(help="Token budget per sequence; responses are cut first.")] = 4096,
    prompt_overflow: PromptOverflowOption = "truncate",
    adapter: AdapterOption = "seqcls",
    adapter_spec: AdapterSpecOption = None,
    engine: EngineOption = "auto",
    dtype: Annotated[str, typer.Option(help="auto, bf16, fp16 or fp32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    batch_tokens: Annotated[int | None, typer.Option(help="Padded tokens per forward pass.")] = None,
    prompt_field: Annotated[str, typer.Option("--prompt-field")] = "description",
    split: Annotated[str | None, typer.Option(help="Dataset split.")] = None,
) -> None:
    """Best-of-n reranking: Hits@K, Spearman with pass rate, reward variance, averaged over questions."""
    from themis_rm.bench.rerank import RerankConfig, run_rerank

    config = RerankConfig(
        model=model,
        data=data,
        output=output,
        criterion=criterion,
        prompts=prompts,
        max_length=max_length,
        prompt_overflow=prompt_overflow,
        adapter=adapter,
        adapter_spec=adapter_spec,
        engine=engine,
        dtype=dtype,
        device=device,
        batch_tokens=batch_tokens,
        ks=tuple(k or (5, 10)),
        split=split,
        prompt_field=prompt_field,
    )
    with _friendly_errors(), progress_bar("scoring completions") as (set_total, advance):
        result = run_rerank(config, on_loaded=set_total, progress=advance)
    overall = result.results["overall"]
    hits = ", ".join(f"{key} {value}" for key, value in overall.items() if key.startswith("hits_at_"))
    console.print(
        f"{overall['n_questions']} questions: {hits}; spearman mean {overall['spearman_mean']} -> {result.output}"
    )


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Benchmark run directories (results.json + scores.parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Report directory.")] = Path("report"),
    reference_dir: Annotated[
        Path | None, typer.Option(help="Directory of reference runs to show beside yours.")
    ] = None,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for 95% confidence intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Markdown and self-contained HTML report with plots and bootstrap confidence intervals."""
    from themis_rm.bench.report import build_report

    with _friendly_errors():
        paths = build_report(run_dirs, output, reference_dir=reference_dir, n_bootstrap=n_bootstrap, seed=seed)
    console.print(f"report: {paths.html} ({len(paths.pngs)} plots), {paths.markdown}")


@app.command()
def criteria(
    prompts: PromptsOption = None,
    criteria_file: CriteriaFileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {key: exact eval prompt} for the five criteria and Full.")
    ] = False,
    fetch: Annotated[bool, typer.Option("--fetch", help="Download, verify and cache the official pack.")] = False,
) -> None:
    """List the criteria, their aliases and the prompt pack in use."""
    from themis_rm.criteria import CRITERIA, FULL
    from themis_rm.packs import fetch_official_pack, resolve_pack

    with _friendly_errors():
        if fetch:
            console.print(f"cached the official pack at {fetch_official_pack()}")
        pack = resolve_pack(prompts, criteria_file)
    if as_json:
        keys = [*CRITERIA, *(k for k in pack.keys if k not in CRITERIA), FULL]
        typer.echo(json.dumps({key: pack.eval_prompt(pack.resolve(key)) for key in keys}, indent=1, ensure_ascii=False))
        return
    table = Table(title=f"criteria — prompt pack {pack.name} (sha256 {pack.sha256[:12]})")
    for column in ("criterion", "aliases", "eval prompt chars"):
        table.add_column(column)
    aliases = {
        key: sorted(a for a in pack.valid_names() if a not in pack.keys and pack.resolve(a) == (key,))
        for key in pack.keys
    }
    for key in pack.keys:
        table.add_row(key, ", ".join(aliases[key]), str(len(pack.eval_prompt((key,)) or "")))
    table.add_row(FULL, "full, all", str(len(pack.eval_prompt(pack.resolve(FULL)) or "")))
    table.add_row("none", "", "0 (no system prompt)")
    _wide_console().print(table)
    sampling = pack.sampling
    typer.echo(
        f"training sampler: {sampling.none:.0%} none / {sampling.single:.0%} single / "
        f"{sampling.full:.0%} all five shuffled"
    )


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the demo writes its artefacts.")] = Path(
        "demo-output"
    ),
    prompts: PromptsOption = None,
    problems: Annotated[int | None, typer.Option(help="HumanEval problems to mutate (default: all 164).")] = None,
    train_steps: Annotated[int, typer.Option(help="Optimizer steps of the tiny model.")] = 100,
) -> None:
    """Offline end-to-end demo: verified bug pairs -> train a tiny RM -> bench -> rerank -> report."""
    from themis_rm.demo import DemoConfig, run_demo

    config = DemoConfig(output=output, prompts=prompts, problems=problems, train_steps=train_steps)
    with _friendly_errors():
        result = run_demo(config, console=_wide_console())
    console.print(f"demo artefacts in {result.output}; report: {result.summary['report']}")


if __name__ == "__main__":
    app()
