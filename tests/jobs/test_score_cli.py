"""``themis score`` / ``themis criteria`` / ``themis --version`` end to end on a tiny local model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from themis_rm.cli import app
from themis_rm.scoring.job import settings_path
from themis_rm.tiny import build_tiny_causal_lm, write_pairs_jsonl

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _score(model, source, output, *options):
    """``themis score --model MODEL --input SOURCE --output OUTPUT OPTIONS...``."""
    return _invoke("score", "--model", model, "--input", source, "--output", output, *options)


def _pair(pair_id: str, **fields) -> dict:
    """A valid pair row named ``pair_id``; ``fields`` replace or add columns."""
    return {"id": pair_id, "prompt": "p", "chosen": "x", "rejected": "y", **fields}


def test_score_on_real_pairs_scores_every_row_and_records_settings(
    tiny_model_dir, shared_dir, official_prompts_path, tmp_path
):
    pairs_file = shared_dir / "data" / "pairs" / "humanevalpack.jsonl"
    n_rows = sum(1 for line in pairs_file.read_text().splitlines() if line.strip())
    out = tmp_path / "scores.jsonl"
    options = ("--criterion", "aspect", "--prompts", official_prompts_path, "--max-length", 2048, "--device", "cpu")
    result = _score(tiny_model_dir, pairs_file, out, *options)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == n_rows
    assert all(isinstance(r["chosen_score"], float) and isinstance(r["rejected_score"], float) for r in rows)
    assert {r["criteria"] for r in rows} == {"aspect"}
    settings = json.loads(settings_path(out).read_text())
    assert settings["summary"]["rows"] == n_rows and settings["summary"]["skipped"] == 0
    assert settings["max_length"] == 2048 and settings["prompt_pack"]["name"] == official_prompts_path.name
    assert settings["engine"] == "auto" and sum(settings["engine_paths"].values()) == 1, "the path that ran"
    assert settings["summary"]["prompt_truncated"] <= settings["summary"]["truncated"]
    assert all(settings[package] for package in ("numpy", "pandas", "pyarrow", "tokenizers"))
    assert f"scored {n_rows} rows" in result.output


def test_score_responses_file_to_json_output(tiny_model_dir, tmp_path):
    rows = [{"id": f"r{i}", "prompt": "Add.", "response": f"return {i}"} for i in range(5)]
    source = write_pairs_jsonl(tmp_path / "responses.jsonl", rows)
    out = tmp_path / "scores.json"
    result = _score(tiny_model_dir, source, out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert [r["id"] for r in document["rows"]] == [f"r{i}" for i in range(5)]
    assert document["settings"]["criteria"] == "none" and document["settings"]["kind"] == "responses"


def test_an_output_that_is_the_input_is_refused_and_the_input_kept(tiny_model_dir, tmp_path):
    """Issue 21, item 7: ``-i X -o X`` replaced the data with its scores."""
    source = write_pairs_jsonl(tmp_path / "pairs.jsonl", [_pair("a"), _pair("b")])
    before = source.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(source)
    for output in (source, tmp_path / "link.jsonl", tmp_path / "." / "pairs.jsonl"):
        result = _score(tiny_model_dir, source, output)
        assert result.exit_code == 2, result.output
        assert "is the --input file: writing it would destroy the input" in " ".join(result.output.split())
    settings_file = tmp_path / "pairs.jsonl.settings.json"
    source.rename(settings_file)
    result = _score(tiny_model_dir, settings_file, tmp_path / "pairs.jsonl")  # its settings file is the input
    assert result.exit_code == 2 and "its settings file" in " ".join(result.output.split())
    assert settings_file.read_bytes() == before


def test_bad_row_fails_with_file_row_and_field(tiny_model_dir, tmp_path):
    source = write_pairs_jsonl(tmp_path / "pairs.jsonl", [_pair("a"), _pair("b", chosen=" ")])
    result = _score(tiny_model_dir, source, tmp_path / "o.jsonl")
    assert result.exit_code == 2
    assert f"{source}:2: field 'chosen' is empty" in " ".join(result.output.split())


def test_repeated_pair_ids_are_refused_as_bench_refuses_them(tiny_model_dir, tmp_path):
    """Issue 21, item 9: score said nothing about them, while bench refused the same file."""
    source = write_pairs_jsonl(tmp_path / "pairs.jsonl", [_pair("a"), _pair("b"), _pair("a", chosen="z")])
    result = _score(tiny_model_dir, source, tmp_path / "o.jsonl")
    assert result.exit_code == 2
    assert "pair ids must be unique (1 repeated; first: ['a'])" in " ".join(result.output.split())


def test_responses_sharing_an_id_are_scored_with_a_warning(tiny_model_dir, tmp_path, caplog):
    """Rollouts of one prompt often carry the prompt's id: scored, in order, and said."""
    rows = [{"id": "q1", "prompt": "Add.", "response": f"return {i}"} for i in range(3)]
    source = write_pairs_jsonl(tmp_path / "responses.jsonl", rows)
    with caplog.at_level("WARNING", logger="themis_rm.scoring.job"):
        result = _score(tiny_model_dir, source, tmp_path / "o.jsonl", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "1 ids are shared by several responses (first: ['q1'])" in caplog.text


def test_unknown_criterion_exits_with_the_valid_names(tiny_model_dir, official_prompts_path, tmp_path):
    source = write_pairs_jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "response": "r"}])
    options = ("--criterion", "speediness", "--prompts", official_prompts_path)
    result = _score(tiny_model_dir, source, tmp_path / "o.jsonl", *options)
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "unknown criterion 'speediness'" in flat and "Runtime_Efficiency" in flat


def test_criteria_json_prints_the_exact_eval_prompts(official_prompts_path):
    result = _invoke("criteria", "--json", "--prompts", official_prompts_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(official_prompts_path.read_text())["eval_prompts"]


def test_criteria_offline_without_a_pack_lists_names_and_aliases_and_says_how_to_get_the_strings():
    result = _invoke("criteria")
    output = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "Security_Hardness" in output and "security, sh" in output and "--prompt-pack open" in output
    strings = _invoke("criteria", "--json")  # the strings themselves need a pack
    assert strings.exit_code == 2 and "--prompt-pack" in " ".join(strings.output.split())


def test_score_limit_and_pairwise_accuracy(tiny_model_dir, tmp_path):
    rows = [_pair(f"p{i}", chosen=f"return {i}", rejected=f"return -{i}") for i in range(6)]
    rows.append(_pair("tie", chosen="same", rejected="same"))
    source = write_pairs_jsonl(tmp_path / "pairs.jsonl", rows)
    limited = _score(tiny_model_dir, source, tmp_path / "a.jsonl", "--limit", 3, "--device", "cpu")
    assert limited.exit_code == 0, limited.output
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3 and "pairwise accuracy" in limited.output
    every = _score(tiny_model_dir, source, tmp_path / "b.jsonl", "--device", "cpu")
    settings = json.loads(settings_path(tmp_path / "b.jsonl").read_text())["summary"]
    assert settings["ties"] == 1 and 0.0 <= settings["pair_accuracy"] <= 6 / 7
    assert "1 ties, counted wrong" in " ".join(every.output.split())


def test_version_via_the_console_entry_point():
    script = Path(sys.executable).parent / "themis"  # the installed console script, not ``python -m``
    assert script.is_file(), f"{script}: console script missing; reinstall with pip install -e ."
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("themis-rm ")


def test_aspect_criterion_refuses_a_row_without_aspect_naming_file_row_and_id(
    tiny_model_dir, official_prompts_path, tmp_path
):
    rows = [_pair("a", aspect="Runtime_Efficiency"), _pair("no-aspect")]
    source = write_pairs_jsonl(tmp_path / "pairs.jsonl", rows)
    options = ("--criterion", "aspect", "--prompts", official_prompts_path)
    result = _score(tiny_model_dir, source, tmp_path / "o.jsonl", *options)
    assert result.exit_code == 2
    assert (
        f"{source}:2: field 'aspect' is missing (id 'no-aspect'); --criterion aspect needs every row's aspect; "
        "use --criterion full/none or add the field"
    ) in " ".join(result.output.split())


def test_prompt_too_long_error_names_the_pair(tiny_model_dir, tmp_path):
    source = write_pairs_jsonl(tmp_path / "pairs.jsonl", [_pair("ok"), _pair("long-one", prompt="word " * 400)])
    options = ("--max-length", 64, "--device", "cpu", "--prompt-overflow", "error")
    result = _score(tiny_model_dir, source, tmp_path / "o.jsonl", *options)
    assert result.exit_code == 2
    assert "pair 'long-one' (chosen)" in " ".join(result.output.split())


def test_adapter_option_reaches_the_loader_and_is_recorded(qwen_tokenizer, tmp_path):
    shape = dict(hidden_size=32, num_layers=1, num_attention_heads=2, num_key_value_heads=1, intermediate_size=64)
    lm_dir = build_tiny_causal_lm(tmp_path / "lm", tokenizer=qwen_tokenizer, **shape)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"logit_token_id": 5}))
    source = write_pairs_jsonl(tmp_path / "r.jsonl", [{"id": "a", "prompt": "p", "response": "r"}])
    out = tmp_path / "o.json"
    result = _score(lm_dir, source, out, "--adapter", "lm-logprob", "--adapter-spec", spec, "--device", "cpu")
    assert result.exit_code == 0, result.output
    settings = json.loads(out.read_text())["settings"]
    assert settings["adapter"] == "lm-logprob" and settings["adapter_spec"]["logit_token_id"] == 5
