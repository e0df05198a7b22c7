"""``themis report`` over a fresh bench run beside the published reference runs."""

from __future__ import annotations

from typer.testing import CliRunner

from themis_rm.bench.run import BenchConfig, run_bench
from themis_rm.cli import app
from themis_rm.demo import demo_pairs


def test_report_cli_compares_a_bench_run_with_reference_runs(tiny_model_dir, shared_dir, tmp_path):
    import json

    data = tmp_path / "demo.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "id": p.id,
                    "prompt": p.prompt,
                    "chosen": p.chosen,
                    "rejected": p.rejected,
                    "aspect": p.aspect,
                    "language": p.language,
                    "subset": p.subset,
                }
            )
            + "\n"
            for p in demo_pairs()
        )
    )
    run_bench(
        BenchConfig(model=str(tiny_model_dir), data=str(data), output=tmp_path / "run", criterion="none", device="cpu")
    )
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(tmp_path / "run"),
            "-o",
            str(tmp_path / "report"),
            "--reference-dir",
            str(shared_dir / "reference" / "evaluation_runs"),
            "--n-bootstrap",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Themis-RM-8B" in html and "(reference)" in html


def test_bench_summarize_cli_reproduces_a_published_results_file_byte_for_byte(shared_dir, tmp_path):
    run = shared_dir / "reference" / "evaluation_runs" / "Themis-RM-8B"
    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, ["bench", "summarize", str(run / "scores.parquet"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (run / "results.json").read_bytes()
