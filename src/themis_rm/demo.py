"""``themis demo``: the whole scoring path offline — tiny model, bundled pairs, every criterion.

The model is random and tiny (demo scale): the table shows the machinery (criteria -> prompt -> render ->
engine -> reward), not a trained model's judgement. The closing lines give the commands for real checkpoints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from themis_rm.criteria import CRITERIA, FULL, PromptPack
from themis_rm.errors import PromptPackError
from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import PreferencePair, load_pairs
from themis_rm.scoring import ASPECT, Scorer, load_reward_model
from themis_rm.tiny import build_tiny_reward_model

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


@dataclass(frozen=True)
class DemoResult:
    output: Path
    pairs: int
    accuracy: dict[str, float]
    prompt_pack: str


def demo_pairs() -> list[PreferencePair]:
    """The bundled sample pairs: two per criterion, eight languages, written for this package."""
    with resources.as_file(resources.files("themis_rm.resources") / "demo_pairs.jsonl") as path:
        return load_pairs(path).rows


def _demo_pack(prompts: str | None, console: Console) -> PromptPack:
    try:
        return load_prompt_pack(prompts)
    except PromptPackError as exc:
        if prompts is not None:
            raise
        console.print(
            f"[yellow]official prompt pack unavailable ({str(exc).split(':')[0]}); "
            "using themis-rm's own 'open' wording[/yellow]"
        )
        return load_prompt_pack("open")


def run_demo(output: Path, *, prompts: str | None = None, console: Console | None = None) -> DemoResult:
    """Build (or reuse) the tiny model in ``output``, score the sample pairs under every mode, print a table."""
    console = console or Console()
    model_dir = output / "tiny-rm"
    if not (model_dir / "config.json").is_file():
        console.print(f"building a tiny random Qwen3 reward model in {model_dir} ...")
        build_tiny_reward_model(model_dir)
    pack = _demo_pack(prompts, console)
    scorer = Scorer(load_reward_model(str(model_dir), device="cpu"), prompts=pack, max_length=4096)
    pairs = demo_pairs()
    margins = {}
    for mode in DEMO_MODES:
        scores = scorer.score_pairs(pairs, criteria=mode)
        margins[mode] = (scores.chosen - scores.rejected).tolist()
    accuracy = {mode: sum(m > 0 for m in values) / len(values) for mode, values in margins.items()}
    console.print(_margin_table(pairs, margins, accuracy, pack))
    records = [
        {
            "id": p.id,
            "aspect": p.aspect,
            "language": p.language,
            "margins": {mode: margins[mode][i] for mode in DEMO_MODES},
        }
        for i, p in enumerate(pairs)
    ]
    output.mkdir(parents=True, exist_ok=True)
    (output / "demo_scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (output / "demo_settings.json").write_text(json.dumps(scorer.settings(), indent=1) + "\n", encoding="utf-8")
    console.print(
        "These numbers come from a tiny RANDOM model (demo scale); they show the pipeline, not a judgement.\n"
        "On a GPU with a real checkpoint:\n"
        "  themis score --model project-themis/Themis-RM-8B --input pairs.jsonl --criterion aspect "
        "--output scores.jsonl\n"
        "  themis criteria --fetch   # cache the official Themis prompt strings once (needs internet)"
    )
    return DemoResult(output, len(pairs), accuracy, pack.name)


def _margin_table(pairs, margins, accuracy, pack: PromptPack) -> Table:
    table = Table(title=f"chosen − rejected reward per criterion prompt (pack: {pack.name})")
    table.add_column("pair")
    table.add_column("language")
    for mode in DEMO_MODES:
        table.add_column(_SHORT[mode], justify="right")
    for i, pair in enumerate(pairs):
        cells = [f"[{'green' if margins[m][i] > 0 else 'red'}]{margins[m][i]:+.2f}[/]" for m in DEMO_MODES]
        table.add_row(pair.id.removeprefix("DEMO_"), pair.language or "", *cells)
    table.add_row("accuracy", "", *(f"{accuracy[m]:.0%}" for m in DEMO_MODES), style="bold")
    return table
