"""Bench report: a self-contained HTML and Markdown report from real reference runs; the seeded bootstrap CI."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from themis_rm.bench.metrics import bootstrap_mean_ci
from themis_rm.bench.report import ReportPaths, build_report
from themis_rm.errors import ThemisInputError

N_BOOTSTRAP = 200
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OWN_LABEL = "themis-0.6b-repro"
ROBUSTNESS = {  # the shape themis bench --perturb writes into run.json
    "self_praise": {
        "side": "rejected",
        "accuracy": 0.6012,
        "drop": 0.1234,
        "by_aspect_drop": {"Functional_Correctness": 0.2, "Security_Hardness": -0.01},
        "unchanged_pairs": 3,
    },
    "whitespace": {"side": "both", "accuracy": 0.7241, "drop": 0.0005, "by_aspect_drop": {}, "unchanged_pairs": 0},
}


@pytest.fixture(scope="module")
def reference_runs(shared_dir) -> Path:
    return shared_dir / "reference" / "evaluation_runs"


@pytest.fixture(scope="module")
def report(reference_runs, tmp_path_factory) -> ReportPaths:
    """Two runs (a copy of Themis-RM-0.6B with our run.json, and AceCodeRM-32B as is) plus every reference run."""
    own = tmp_path_factory.mktemp("runs") / "themis-0.6b"
    own.mkdir()
    for name in ("results.json", "scores.parquet"):
        shutil.copy(reference_runs / "Themis-RM-0.6B" / name, own / name)
    settings = {"model": OWN_LABEL, "dtype": "bf16", "prompt_mode": "aspect", "ties": "wrong", "pairs_per_s": 123.4}
    settings["robustness"] = ROBUSTNESS
    (own / "run.json").write_text(json.dumps(settings), encoding="utf-8")
    output = tmp_path_factory.mktemp("report")
    return build_report(
        [own, reference_runs / "AceCodeRM-32B"], output, reference_dir=reference_runs, n_bootstrap=N_BOOTSTRAP
    )


def _overall_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "results.json").read_text())["overall"]["accuracy"]


# --------------------------------------------------------------------------- report files


def test_report_writes_markdown_html_and_one_png_per_plot(report):
    assert report.markdown.is_file() and report.html.is_file()
    # comparison + (heatmap, histograms, subsets) per own run + the robustness plot of the run that has one
    assert len(report.pngs) == 1 + 3 * 2 + 1
    assert [p.name for p in report.pngs if "robustness" in p.name] == [f"run1-{OWN_LABEL}-robustness.png"]
    for png in report.pngs:
        assert png.parent == report.html.parent
        assert png.read_bytes().startswith(PNG_MAGIC)
    markdown = report.markdown.read_text()
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (report.markdown.parent / link).is_file(), link


def test_html_is_self_contained_with_every_png_embedded(report):
    page = report.html.read_text()
    targets = [
        "".join(groups) for groups in re.findall(r"""\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", page)
    ]
    assert len(targets) == len(report.pngs) + 2  # the images, and one in-page link per own run
    assert [t for t in targets if not t.startswith(("data:image/png;base64,", "#"))] == []
    assert "<script" not in page and "<link" not in page and "url(" not in page and "@import" not in page
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(report.pngs)
    assert sorted(base64.b64decode(data) for data in embedded) == sorted(p.read_bytes() for p in report.pngs)


def test_tables_name_every_model_and_its_overall_accuracy(report, reference_runs):
    page, markdown = report.html.read_text(), report.markdown.read_text()
    expected = {
        OWN_LABEL: _overall_accuracy(reference_runs / "Themis-RM-0.6B"),
        "AceCodeRM-32B": _overall_accuracy(reference_runs / "AceCodeRM-32B"),
    }
    for name in ("Themis-RM-8B", "Themis-RM-0.6B", "SkyworkV2-Qwen-8B", "R3-Qwen3-8B-14k", "internlm2-20b-reward"):
        expected[f"{name} (reference)"] = _overall_accuracy(reference_runs / name)
    for name, accuracy in expected.items():
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {100 * accuracy:.2f} [" in row, row
        assert name in page and f"{100 * accuracy:.2f}" in page
    assert "62.95" in page  # AceCodeRM-32B, as results.json gives 0.6295


def test_a_run_dir_inside_reference_dir_is_not_listed_twice(report):
    markdown = report.markdown.read_text()
    assert "| AceCodeRM-32B |" in markdown
    assert "AceCodeRM-32B (reference)" not in markdown


def test_run_json_gives_label_pairs_per_s_and_settings(report):
    markdown = report.markdown.read_text()
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {OWN_LABEL} |"))
    assert row.endswith("| 0 | 0 | 123.4 |")
    assert "| dtype | bf16 |" in markdown and "| prompt_mode | aspect |" in markdown
    ace = next(line for line in markdown.splitlines() if line.startswith("| AceCodeRM-32B |"))
    assert ace.endswith("| 1,152 | 0 | — |")  # the reference's 1152 ties; no run.json, no pairs/s


def test_perturbation_results_are_a_table_not_a_json_cell(report):
    """Issue 20, item 7: ``robustness`` showed as a settings cell of JSON cut at 120 characters."""
    markdown = report.markdown.read_text()
    assert "| robustness |" not in markdown
    lines = _table_after(markdown, "### Robustness: accuracy under each perturbation (largest drop first)")
    assert lines[0] == (
        "| Perturbation | Edits | Accuracy % | Change (points) | Unchanged pairs | Functional_Correctness | "
        "Security_Hardness |"
    )
    assert lines[2].startswith("| clean |")
    assert lines[3] == "| self_praise | rejected | 60.12 | -12.34 | 3 | -20.00 | +1.00 |"  # largest drop first
    assert lines[4] == "| whitespace | both | 72.41 | -0.05 | 0 | — | — |"
    assert "Robustness: accuracy under each perturbation" in report.html.read_text()


def test_every_run_has_a_row_in_the_per_language_table(report, reference_runs):
    markdown = report.markdown.read_text()
    rows = _table_after(markdown, "### Accuracy % by language [95% CI]")
    by_language = json.loads((reference_runs / "Themis-RM-0.6B" / "results.json").read_text())["by_language"]
    assert rows[0] == "| Model | " + " | ".join(sorted(by_language)) + " |"
    own = next(row for row in rows if row.startswith(f"| {OWN_LABEL} |"))
    for language, cell in zip(sorted(by_language), own.split(" | ")[1:], strict=True):
        assert cell.startswith(f"{100 * by_language[language]['accuracy']:.2f} ["), language
    assert len(rows) == len(_table_after(markdown, "### Accuracy % by aspect [95% CI]"))  # one row per run


def _table_after(markdown: str, title: str) -> list[str]:
    """The Markdown table right under ``title``: header, rule and rows."""
    lines = markdown.split(title + "\n\n", 1)[1].splitlines()
    return lines[: next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]


def test_rows_over_very_different_numbers_of_pairs_get_a_warning(report, reference_runs, tmp_path):
    from themis_rm.bench.metrics import compile_results, read_scores_parquet, write_results_json

    assert "Warning" not in report.markdown.read_text()  # every row there has all 8,866 pairs
    small = tmp_path / "limited"
    small.mkdir()
    scores = read_scores_parquet(reference_runs / "Themis-RM-0.6B" / "scores.parquet").iloc[:100]
    scores.to_parquet(small / "scores.parquet")
    write_results_json(compile_results(scores, ties="wrong"), small / "results.json")
    paths = build_report([small, reference_runs / "AceCodeRM-32B"], tmp_path / "report", n_bootstrap=N_BOOTSTRAP)
    expected = "very different numbers of pairs (limited: 100; AceCodeRM-32B: 8,866)"
    assert expected in paths.markdown.read_text() and expected in paths.html.read_text()


# --------------------------------------------------------------------------- errors


def test_missing_run_files_error_names_the_path_and_the_file(tmp_path, reference_runs):
    run = tmp_path / "half-run"
    run.mkdir()
    shutil.copy(reference_runs / "AceCodeRM-32B" / "results.json", run / "results.json")
    with pytest.raises(ThemisInputError, match=rf"{re.escape(str(run))}: missing scores\.parquet"):
        build_report([run], tmp_path / "out", n_bootstrap=N_BOOTSTRAP)
    (run / "results.json").unlink()
    with pytest.raises(ThemisInputError, match=r"missing results\.json and scores\.parquet"):
        build_report([run], tmp_path / "out", n_bootstrap=N_BOOTSTRAP)
    with pytest.raises(ThemisInputError, match="run directory not found"):
        build_report([tmp_path / "nowhere"], tmp_path / "out", n_bootstrap=N_BOOTSTRAP)


def test_unknown_tie_policy_in_run_json_is_an_error(tmp_path, reference_runs):
    run = tmp_path / "run"
    shutil.copytree(reference_runs / "AceCodeRM-32B", run)
    (run / "run.json").write_text(json.dumps({"ties": "skip"}))
    with pytest.raises(ThemisInputError, match=r"run\.json: 'ties' must be 'wrong' or 'half', got 'skip'"):
        build_report([run], tmp_path / "out", n_bootstrap=N_BOOTSTRAP)


def test_reference_dir_without_runs_is_an_error(tmp_path):
    (tmp_path / "refs" / "empty").mkdir(parents=True)
    with pytest.raises(ThemisInputError, match=r"no subdirectory holds both results\.json and scores\.parquet"):
        build_report([], tmp_path / "out", reference_dir=tmp_path / "refs")


# --------------------------------------------------------------------------- bootstrap CI


def _pairs(n: int, accuracy: float, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < accuracy).astype(float)


def test_bootstrap_ci_is_deterministic_for_a_seed():
    correct = _pairs(500, 0.7)
    assert bootstrap_mean_ci(correct, N_BOOTSTRAP, 3) == bootstrap_mean_ci(correct, N_BOOTSTRAP, 3)
    assert bootstrap_mean_ci(correct, N_BOOTSTRAP, 3) != bootstrap_mean_ci(correct, N_BOOTSTRAP, 4)


@pytest.mark.parametrize("accuracy", [0.1, 0.5, 0.9])
def test_bootstrap_ci_contains_the_point_estimate(accuracy):
    correct = _pairs(300, accuracy)
    low, high = bootstrap_mean_ci(correct, N_BOOTSTRAP, 0)
    assert low < correct.mean() < high


def test_bootstrap_ci_narrows_with_more_pairs():
    widths = [np.subtract(*bootstrap_mean_ci(_pairs(n, 0.7), N_BOOTSTRAP, 0)[::-1]) for n in (100, 1000, 10000)]
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[2] == pytest.approx(2 * 1.96 * math.sqrt(0.7 * 0.3 / 10000), rel=0.2)  # the normal-approx width


def test_bootstrap_ci_hand_checked_cases():
    assert bootstrap_mean_ci(np.ones(50), N_BOOTSTRAP, 0) == (1.0, 1.0)
    assert bootstrap_mean_ci(np.zeros(50), N_BOOTSTRAP, 0) == (0.0, 0.0)
    assert bootstrap_mean_ci(np.full(10, 0.5), N_BOOTSTRAP, 0) == (0.5, 0.5)  # all half-credit ties
    # Two pairs, one right: resampled means 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 2.5%/97.5% are 0 and 1.
    assert bootstrap_mean_ci(np.array([1.0, 0.0]), 2000, 0) == (0.0, 1.0)
    assert all(math.isnan(bound) for bound in bootstrap_mean_ci(np.array([]), N_BOOTSTRAP, 0))


def test_bootstrap_ci_matches_resampling_pair_indices():
    correct = np.concatenate([_pairs(350, 0.6), np.full(50, 0.5)])
    indices = np.random.default_rng(7).integers(0, correct.size, size=(4000, correct.size))
    expected = np.quantile(correct[indices].mean(axis=1), [0.025, 0.975])
    assert bootstrap_mean_ci(correct, 4000, 0) == pytest.approx(tuple(expected), abs=0.01)


def test_bootstrap_ci_rejects_nan_credit():
    with pytest.raises(ThemisInputError, match="NaN"):
        bootstrap_mean_ci(np.array([1.0, math.nan]), N_BOOTSTRAP, 0)
