"""Best-of-N curves: the closed form against brute force over every subset, and curves whose answer is known."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from themis_rm.bench.best_of_n import (
    BEST_OF_N_FILE,
    best_of_n,
    best_of_n_curve,
    curve_sizes,
    expected_top_pass,
    oracle_pass,
    random_pass,
)
from themis_rm.bench.report import build_report
from themis_rm.bench.rerank import RerankConfig, run_rerank
from themis_rm.cli import app
from themis_rm.errors import ThemisInputError


def _brute_force(rewards: list[float], passed: list[bool], n: int) -> tuple[float, float]:
    """Mean over every n-subset of (pass of the top pick with ties split evenly, any pass in the subset)."""
    keys = [-math.inf if math.isnan(r) else r for r in rewards]
    picks, anys = [], []
    for subset in itertools.combinations(range(len(rewards)), n):
        best = max(keys[i] for i in subset)
        top = [i for i in subset if keys[i] == best]
        picks.append(sum(passed[i] for i in top) / len(top))
        anys.append(any(passed[i] for i in subset))
    return float(np.mean(picks)), float(np.mean(anys))


@pytest.mark.parametrize("seed", range(12))
def test_closed_form_equals_brute_force_over_every_subset_with_ties_and_nans(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 9))
    rewards = rng.integers(0, 4, size).astype(float).tolist()  # few distinct values: ties are common
    if size > 2:
        rewards[int(rng.integers(size))] = math.nan
    passed = (rng.random(size) < 0.4).tolist()
    for n in range(1, size + 1):
        pick, any_pass = _brute_force(rewards, passed, n)
        assert expected_top_pass(rewards, passed, n) == pytest.approx(pick, abs=1e-12)
        assert oracle_pass(passed, n) == pytest.approx(any_pass, abs=1e-12)


def test_a_perfect_ranker_is_the_oracle_a_constant_one_is_random_and_n1_is_random_for_all():
    passed = [False, True, False, False, True, False, False]
    perfect = [1.0 if p else 0.0 for p in passed]
    reversed_ = [0.0 if p else 1.0 for p in passed]
    for n in range(1, len(passed) + 1):
        assert expected_top_pass(perfect, passed, n) == pytest.approx(oracle_pass(passed, n))
        assert expected_top_pass([3.0] * len(passed), passed, n) == pytest.approx(random_pass(passed))
    assert expected_top_pass(reversed_, passed, len(passed)) == 0.0  # the whole list: always the worst pick
    assert expected_top_pass(reversed_, passed, 1) == random_pass(passed) == oracle_pass(passed, 1) == 2 / 7


def test_without_ties_the_rank_form_holds():
    rewards, passed = [0.9, 0.5, 0.1, -2.0], [False, True, True, False]
    n, size = 2, 4
    order = np.argsort(rewards)[::-1]
    by_rank = sum(math.comb(size - 1 - k, n - 1) / math.comb(size, n) * passed[i] for k, i in enumerate(order))
    assert expected_top_pass(rewards, passed, n) == pytest.approx(by_rank)


def test_curve_sizes_double_up_to_the_longest_list():
    assert curve_sizes([1]) == [1]
    assert curve_sizes([3, 5]) == [1, 2, 4, 5]
    assert curve_sizes([8, 2]) == [1, 2, 4, 8]


def test_a_question_counts_only_at_n_its_list_can_give_and_each_point_says_how_many():
    rewards = [[1.0, 0.0], [2.0, 1.0, 0.0, -1.0]]
    passed = [[True, False], [False, False, False, True]]
    curve = best_of_n_curve(rewards, passed, [1, 2, 4], n_bootstrap=200)
    assert curve["n"] == [1, 2, 4] and curve["n_questions"] == [2, 2, 1]
    assert curve["model"][2] == 0.0 and curve["oracle"][2] == 1.0  # only the reversed list at N = 4
    assert curve["model"][1] == 0.5  # the first list's pick always passes, the second's never (its pass is last)
    low, high = curve["model_ci95"][0]
    assert low <= curve["model"][0] <= high


def test_curves_are_split_by_language_and_record_the_criterion():
    curves = best_of_n(
        [[1.0, 0.0], [0.0, 1.0], [5.0, 4.0]],
        [[True, False], [True, False], [False, True]],
        ["Python", None, "Python"],
        criterion="correctness",
        n_bootstrap=100,
    )
    assert curves["criterion"] == "correctness" and curves["passed_means"] == "final_verdict"
    assert set(curves["by_language"]) == {"Python", "unknown"}
    assert curves["by_language"]["unknown"]["model"] == [0.5, 0.0]
    assert curves["by_language"]["Python"]["model"] == [0.5, 0.5]
    assert curves["overall"]["oracle"] == [0.5, 1.0]


def test_rerank_writes_the_curves_and_n1_is_the_random_pick(tiny_model_dir, tmp_path):
    questions = [
        {
            "id": f"q{i}",
            "description": f"Write f{i}.",
            "language": "Python" if i % 2 else "Go",
            "completions": [f"def f{i}(): return {j}" for j in range(4)],
            "num_passed": [1, 0, 1, 0],
            "num_failed": [0, 1, 0, 1],
            "final_verdict": [True, False, True, False],
        }
        for i in range(4)
    ]
    data = tmp_path / "rerank.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in questions))
    result = run_rerank(
        RerankConfig(model=str(tiny_model_dir), data=str(data), output=tmp_path / "run", device="cpu", ks=(1,))
    )
    written = json.loads((tmp_path / "run" / BEST_OF_N_FILE).read_text())
    assert written == result.best_of_n
    overall = written["overall"]
    assert overall["n"] == [1, 2, 4] and overall["n_questions"] == [4, 4, 4]
    assert overall["model"][0] == overall["random"][0] == overall["oracle"][0] == 0.5
    assert overall["oracle"][1] == pytest.approx(1 - 1 / 6) and overall["oracle"][2] == 1.0
    assert overall["model"][2] == result.results["overall"]["hits_at_1"]  # the whole list: the top-1 pick
    assert set(written["by_language"]) == {"Go", "Python"}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["best_of_n"]["n"] == [1, 2, 4] and run["best_of_n"]["model"] == overall["model"]


# --------------------------------------------------------------------------------------------------- report


def _rerank_dir(root: Path, name: str, criterion: str, flip: bool) -> Path:
    """A rerank output directory with constructed curves (no model): two languages, lists of 4 and 3."""
    passed = [[True, False, False, True], [False, True, False], [True, False, False, False]]
    rewards = [[float(p != flip) for p in verdicts] for verdicts in passed]
    directory = root / name
    directory.mkdir()
    curves = best_of_n(rewards, passed, ["Python", "Go", "Go"], criterion=criterion, n_bootstrap=100)
    (directory / BEST_OF_N_FILE).write_text(json.dumps(curves))
    (directory / "run.json").write_text(json.dumps({"model": "tiny-rm", "data": "lists.jsonl"}))
    return directory


def test_report_of_rerank_runs_alone_has_a_best_of_n_table_per_run_and_one_plot(tmp_path):
    good = _rerank_dir(tmp_path, "good", "correctness", flip=False)
    bad = _rerank_dir(tmp_path, "bad", "security", flip=True)
    paths = build_report([], tmp_path / "report", rerank_dirs=[good, bad], n_bootstrap=50)
    assert [path.name for path in paths.pngs] == ["best-of-n.png"]
    markdown = paths.markdown.read_text()
    assert "## Best-of-N reranking" in markdown and "comparison.png" not in markdown
    perfect = _table_after(markdown, "Best-of-N, tiny-rm · correctness")
    worst = _table_after(markdown, "Best-of-N, tiny-rm · security")
    # The perfect ranker is the oracle at every N; the reversed one passes only by chance at N = 1 and never on
    # a whole list that holds a failing candidate.
    assert [row.split("|")[3].strip().split()[0] for row in perfect] == [row.split("|")[4].strip() for row in perfect]
    assert worst[-1].split("|")[1].strip() == "N = 4" and worst[-1].split("|")[3].strip().startswith("0.00")
    html = paths.html.read_text()
    assert 'href="#best-of-n"' in html and html.count("data:image/png;base64,") == 1


def _table_after(markdown: str, title_start: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title_start}"))
    rows = []
    for line in lines[start + 4 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_report_refuses_a_rerank_directory_without_curves(tmp_path):
    (tmp_path / "old").mkdir()
    with pytest.raises(ThemisInputError, match=r"old: no best_of_n\.json"):
        build_report([], tmp_path / "report", rerank_dirs=[tmp_path / "old"])


def test_report_cli_takes_rerank_directories(tmp_path):
    run = _rerank_dir(tmp_path, "run", "correctness", flip=False)
    result = CliRunner().invoke(app, ["report", "--rerank", str(run), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "best-of-n.png").is_file()
