"""The accelerate loop: accumulation equals a big batch, metrics over all micro-batches, schedule, clipping, records."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from safetensors.torch import load_file

from themis_rm.errors import ThemisInputError
from themis_rm.train.checkpoint import list_checkpoints
from themis_rm.train.loop import RUN_FILE, run_training
from themis_rm.train.metrics import METRICS_FILE, read_metrics

from .synthetic import language_pairs, operator_pairs, write_jsonl


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", operator_pairs(32, seed=0))


def _weights(run_dir):
    return load_file(run_dir / "model.safetensors")


def test_gradient_accumulation_equals_one_big_micro_batch(small_config, data, tmp_path):
    common = {"batch_size": 8, "max_steps": 2, "lm_weight": 0.0, "magnitude_weight": 0.01, "max_grad_norm": 100.0}
    big = run_training(small_config(data, micro_batch_size=8, output=str(tmp_path / "big"), **common))
    accumulated = run_training(small_config(data, micro_batch_size=2, output=str(tmp_path / "acc"), **common))
    # The same global gradient: a loss not divided by the accumulation steps would show here 4x.
    assert accumulated.metrics["train/grad_norm"] == pytest.approx(big.metrics["train/grad_norm"], rel=1e-4)
    for name, value in _weights(big.output).items():  # Adam amplifies float-order noise of ~0 gradients a little
        assert value.allclose(_weights(accumulated.output)[name], atol=5e-5), name
    for key in ("loss/bt", "loss/mag", "reward/margin", "reward/accuracy", "train/pairs"):
        assert accumulated.metrics[key] == pytest.approx(big.metrics[key], abs=1e-6), key
    assert accumulated.metrics["train/pairs"] == 8  # the whole step, not the last micro-batch
    assert json.loads((tmp_path / "acc" / RUN_FILE).read_text())["grad_accum"] == 4


def _uneven_pairs() -> list[dict]:
    """Pairs of very different lengths, two of them too long for 256 tokens (dropped under ``--overflow drop``)."""
    rows = operator_pairs(10, seed=1) + language_pairs(4, seed=2)
    for i, row in enumerate(operator_pairs(2, seed=3)):
        rows.insert(3 + 7 * i, {**row, "chosen": row["chosen"] + "\n    # note" * 120})
    return rows


def test_step_gradient_with_lm_loss_does_not_depend_on_the_micro_batch_split(small_config, tmp_path):
    """LM loss on: micro-batches of 8, 2 and 1 pairs give one step the same gradient (a per-micro-batch mean
    would weigh the tokens of short micro-batches more); dropped pairs leave placeholders that count nowhere."""
    data = write_jsonl(tmp_path / "uneven.jsonl", _uneven_pairs())
    common = {"batch_size": 8, "max_steps": 2, "lm_weight": 0.4, "magnitude_weight": 0.01, "max_grad_norm": 1e6}
    runs = {
        micro: run_training(
            small_config(data, micro_batch_size=micro, overflow="drop", output=str(tmp_path / f"m{micro}"), **common)
        )
        for micro in (8, 2, 1)
    }
    assert runs[1].counters["dropped_too_long"] == 2 and runs[1].counters["placeholder_batches"] == 2
    records = {m: [r for r in read_metrics(s.output / METRICS_FILE) if "loss/total" in r] for m, s in runs.items()}
    for micro in (2, 1):
        for mine, big in zip(records[micro], records[8], strict=True):
            for key in ("train/grad_norm", "loss/total", "loss/lm", "loss/bt", "train/pairs", "train/lm_tokens"):
                assert mine[key] == pytest.approx(big[key], rel=1e-5), (micro, mine["step"], key)
        for name, value in _weights(runs[8].output).items():
            assert value.allclose(_weights(runs[micro].output)[name], atol=1e-5), (micro, name)
    assert sum(r["train/pairs"] for r in records[8]) == 16 - 2  # the dropped pairs count in no denominator
    first = records[8][0]
    assert first["loss/total"] == pytest.approx(
        first["loss/bt"] + 0.4 * first["loss/lm"] + 0.01 * first["loss/mag"], rel=1e-5
    )


def test_schedule_warms_up_then_decays_to_min_lr_over_the_planned_steps(small_config, data):
    summary = run_training(small_config(data, epochs=2, warmup_ratio=0.25, lr=1e-3, min_lr=1e-4, log_every=1))
    records = [r for r in read_metrics(summary.output / METRICS_FILE) if "train/lr" in r]
    lrs = [r["train/lr"] for r in records]
    assert summary.steps == len(records) == 2 * (32 // 8)
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(5e-4) and lrs[2] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert 1e-4 <= lrs[-1] < 2e-4
    assert [r["train/epoch"] for r in records][-1] == pytest.approx(2.0)


def test_clipping_bounds_the_update(small_config, data, tmp_path):
    free = run_training(small_config(data, max_steps=2, max_grad_norm=0.0, output=str(tmp_path / "free")))
    clipped = run_training(small_config(data, max_steps=2, max_grad_norm=1e-12, output=str(tmp_path / "clip")))
    # AdamW is scale-invariant except for eps: gradients clipped to 1e-12 (<< eps) barely move the weights.
    assert _weights(free.output)["score.weight"].abs().max() > 1e-4
    assert _weights(clipped.output)["score.weight"].abs().max() < 1e-6
    assert math.isnan(free.metrics["train/grad_norm"]) and clipped.metrics["train/grad_norm"] > 0


def test_run_records_config_counters_metrics_and_eval_by_aspect(small_config, data, tmp_path):
    eval_rows = operator_pairs(6, seed=9)
    eval_rows[0]["aspect"] = "Readability_Maintainability"
    config = small_config(data, eval_data=str(write_jsonl(tmp_path / "eval.jsonl", eval_rows)), eval_every=2)
    summary = run_training(config)
    run = json.loads((summary.output / RUN_FILE).read_text())
    assert run["status"] == "done" and run["config"]["optim"]["lr"] == 1e-3 and run["total_steps"] == 4
    assert run["counters"]["trained_pairs"] == 32 and run["counters"]["dropped_invalid_rows"] == 0
    assert run["lm_loss"] == "chunked_ce" and run["packing"] is False
    records = read_metrics(summary.output / METRICS_FILE)
    evals = [r for r in records if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"eval/accuracy/Functional_Correctness", "eval/accuracy/Readability_Maintainability"} <= set(evals[-1])
    assert evals[-1]["eval/pairs"] == 6 and summary.eval_metrics == {k: v for k, v in evals[-1].items() if k != "step"}


def test_skip_invalid_lists_each_skipped_row_in_run_json(small_config, tmp_path):
    """Issue 21, item 9: only a count reached run.json; which rows were skipped was lost."""
    rows = operator_pairs(33, seed=0)
    rows[5]["chosen"] = "  "
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    summary = run_training(small_config(data, skip_invalid=True, max_steps=1))
    run = json.loads((summary.output / RUN_FILE).read_text())
    assert run["counters"]["dropped_invalid_rows"] == 1
    assert run["skipped_rows"] == [f"{data}:6: field 'chosen' is empty"]


def test_training_that_would_drop_most_pairs_fails_before_the_first_step(small_config, tmp_path):
    """Issue 21, item 6: with 60 of 64 pairs dropped (prompt did not fit) training ran on 4 and exited 0."""
    rows = operator_pairs(64, seed=0)
    for i, row in enumerate(rows):  # 48 with a system prompt that leaves no room at --max-length 96, 16 with none
        row["system"] = "Judge the code by every rule below. " * 40 if i < 48 else ""
    data = write_jsonl(tmp_path / "long_prompts.jsonl", rows)
    with pytest.raises(
        ThemisInputError,
        match=r"75% of 64 sampled training pairs would be dropped "
        r"\(dropped_prompt_too_long 48\), above --max-drop-share 0.2",
    ):
        run_training(small_config(data, max_length=96, output=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()  # failed before anything was written
    summary = run_training(small_config(data, max_length=96, max_drop_share=1.0, output=str(tmp_path / "forced")))
    assert summary.counters["dropped_prompt_too_long"] > 0


def test_resume_under_other_data_or_settings_is_refused_naming_them(small_config, data, tmp_path):
    """Issue 21, item 1: ``--resume auto`` with another --data exited 0 with the old run's weights, and with another
    --lr recorded a rate never used."""
    output = str(tmp_path / "run")
    run_training(small_config(data, max_steps=2, save_every=2, output=output))
    other = write_jsonl(tmp_path / "other.jsonl", operator_pairs(32, seed=5))
    with pytest.raises(ThemisInputError, match=r"other settings or data \(data '.*' -> '.*other.jsonl'; data_sha256"):
        run_training(small_config(other, max_steps=3, save_every=2, output=output, resume="auto"))
    with pytest.raises(ThemisInputError, match=r"\(optim.lr 0.001 -> 0.002\)"):
        run_training(small_config(data, max_steps=2, save_every=2, output=output, resume="auto", lr=2e-3))
    data.write_text(data.read_text().replace("return", "return  "))  # the same path, edited
    with pytest.raises(ThemisInputError, match=r"\(data_sha256 '[0-9a-f]{64}' -> '[0-9a-f]{64}'\)"):
        run_training(small_config(data, max_steps=2, save_every=2, output=output, resume="auto"))


def test_resume_may_change_how_a_run_reports_and_saves(small_config, data, tmp_path):
    output = str(tmp_path / "run")
    run_training(small_config(data, max_steps=2, save_every=2, output=output))
    resumed = run_training(
        small_config(data, max_steps=2, save_every=1, log_every=2, keep_checkpoints=3, output=output, resume="auto")
    )
    assert resumed.resumed_from == 2 and resumed.steps == 2


def test_too_few_pairs_for_one_step_is_a_clear_error(small_config, data):
    with pytest.raises(ThemisInputError, match="--batch-size 64 exceeds the 32 training pairs"):
        run_training(small_config(data, batch_size=64, micro_batch_size=8))


def test_gradient_checkpointing_changes_memory_not_results(small_config, data, tmp_path):
    plain = run_training(small_config(data, max_steps=2, output=str(tmp_path / "plain")))
    checkpointed = run_training(
        small_config(data, max_steps=2, gradient_checkpointing=True, output=str(tmp_path / "ckpt"))
    )
    assert json.loads((checkpointed.output / RUN_FILE).read_text())["activation_checkpointing"] is True
    assert json.loads((plain.output / RUN_FILE).read_text())["activation_checkpointing"] is False
    assert checkpointed.metrics["loss/total"] == pytest.approx(plain.metrics["loss/total"], abs=1e-6)
    for name, value in _weights(plain.output).items():
        assert value.allclose(_weights(checkpointed.output)[name], atol=1e-5), name


def test_bf16_autocast_trains_and_exports_bf16(small_config, data):
    summary = run_training(small_config(data, max_steps=2, mixed_precision="bf16"))
    run = json.loads((summary.output / RUN_FILE).read_text())
    assert run["mixed_precision"] == "bf16" and math.isfinite(summary.metrics["loss/total"])
    weights = _weights(summary.output)
    assert {str(v.dtype) for v in weights.values()} == {"torch.bfloat16"}


def test_dataloader_workers_render_the_same_batches(small_config, data, tmp_path):
    inline = run_training(small_config(data, max_steps=2, output=str(tmp_path / "inline")))
    workers = run_training(small_config(data, max_steps=2, num_workers=2, output=str(tmp_path / "workers")))
    assert workers.metrics["loss/total"] == pytest.approx(inline.metrics["loss/total"], abs=1e-7)
    assert workers.counters == inline.counters


def test_save_every_adds_a_last_step_checkpoint_and_zero_writes_only_the_export(small_config, data, tmp_path):
    none = run_training(small_config(data, max_steps=3, save_every=0, output=str(tmp_path / "none")))
    assert list_checkpoints(none.output) == [] and (none.output / "model.safetensors").is_file()
    every = run_training(small_config(data, max_steps=3, save_every=2, output=str(tmp_path / "every")))
    assert [c.name for c in list_checkpoints(every.output)] == ["step-2", "step-3"]
    assert (every.output / "model.safetensors").is_file()
