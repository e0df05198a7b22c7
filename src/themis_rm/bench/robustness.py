"""``themis bench --perturb``: accuracy under judge-hacking perturbations, beside the clean run.

Each kind (see :mod:`themis_rm.bench.perturb`) rewrites one or both responses of every pair without changing its
label; the perturbed pairs are scored exactly like the clean ones and the accuracy drop is reported per kind and
per aspect. Per-kind ``scores.parquet``/``results.json`` land in ``perturb/<kind>/``; the summary goes to
``robustness.json`` and into ``run.json``, with the sandbox hack suites' verdicts (:func:`hack_suite_report`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from themis_rm.atomic import write_text_atomic
from themis_rm.bench.metrics import compile_results, scores_frame, write_results_json, write_scores_parquet
from themis_rm.bench.perturb import PERTURBATIONS, count_unchanged, perturb_pairs
from themis_rm.pairs import PreferencePair
from themis_rm.scoring.protocols import PairScorer


def pairs_frame(pairs: Sequence[PreferencePair], chosen, rejected):
    """The reference scores table for pairs and their rewards."""
    return scores_frame(
        ids=[p.id for p in pairs],
        chosen=chosen,
        rejected=rejected,
        language=[p.language for p in pairs],
        aspect=[p.aspect for p in pairs],
        subset=[p.subset for p in pairs],
    )


def run_robustness(
    scorer: PairScorer,
    pairs: Sequence[PreferencePair],
    clean: dict,
    *,
    kinds: Sequence[str],
    seed: int,
    prompt_mode: str,
    ties: str,
    output: Path,
    sandbox: dict | None = None,
) -> dict:
    """Score every perturbation kind and return ``{kind: {accuracy, drop, by_aspect_drop, unchanged, side}}``."""
    summary = {}
    for kind, perturbed in perturb_pairs(pairs, kinds, seed).items():
        scores = scorer.score_variant(perturbed, prompt_mode, kind)
        frame = pairs_frame(perturbed, scores.chosen.tolist(), scores.rejected.tolist())
        results = compile_results(frame, ties=ties)
        directory = output / "perturb" / kind
        directory.mkdir(parents=True, exist_ok=True)
        write_scores_parquet(frame, directory / "scores.parquet")
        write_results_json(results, directory / "results.json")
        accuracy = results["overall"]["accuracy"]
        summary[kind] = {
            "side": PERTURBATIONS[kind].side,
            "accuracy": accuracy,
            "drop": round(clean["overall"]["accuracy"] - accuracy, 4),
            "by_aspect_drop": {
                aspect: round(clean["by_aspect"][aspect]["accuracy"] - row["accuracy"], 4)
                for aspect, row in results["by_aspect"].items()
            },
            "unchanged_pairs": count_unchanged(pairs, perturbed),
        }
    document = {"seed": seed, "kinds": summary, **({"sandbox_hack_suite": sandbox} if sandbox else {})}
    write_text_atomic(output / "robustness.json", json.dumps(document, indent=1) + "\n")
    return summary


def hack_suite_report() -> dict:
    """The sandbox's hack suites (what an RL policy does to a test harness: the other half of robustness),
    written into ``robustness.json`` beside the perturbations."""
    from themis_rm.sandbox.check import machine_report

    return machine_report()


def hack_suite_totals(report: dict) -> dict:
    """What ``run.json`` keeps of the report."""
    return {key: report[key] for key in ("cases", "held", "isolation", "missing", "not_covered")}
