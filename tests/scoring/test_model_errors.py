"""Where real checkpoints differ from what a command expects, the error is one line naming the model and the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.scoring import Scorer
from themis_rm.tiny import build_tiny_causal_lm


def test_a_hub_id_not_available_offline_names_the_id_and_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ThemisInputError,
        match=r"'org/missing-rm' is neither a local directory nor a hub model in the local cache \(HF_HUB_OFFLINE",
    ) as info:
        Scorer.from_pretrained("org/missing-rm")
    assert "hf download org/missing-rm" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ThemisInputError, match=r"'./no/such/dir': no such model directory"):
        Scorer.from_pretrained("./no/such/dir")


def test_the_cli_prints_one_line_and_no_traceback(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n")
    command = [sys.executable, "-m", "themis_rm.cli", "score", "--model", "org/missing-rm", "--input", str(rows)]
    done = subprocess.run(
        [*command, "--output", str(tmp_path / "out.jsonl")],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "org/missing-rm" in done.stderr and "hf download" in done.stderr


def test_a_causal_lm_given_to_the_seqcls_adapter_says_to_train_it_or_use_lm_logprob(tmp_path, qwen_tokenizer):
    base = build_tiny_causal_lm(tmp_path / "base", tokenizer=qwen_tokenizer, hidden_size=32, num_layers=1)
    with pytest.raises(ThemisInputError, match=r"is a language model \(Qwen3ForCausalLM\), not a reward model") as info:
        Scorer.from_pretrained(str(base))
    assert "themis train --model" in str(info.value) and "--adapter lm-logprob" in str(info.value)
    Scorer.from_pretrained(str(base), adapter="lm-logprob", adapter_spec={"logit_token_id": 0})  # what works
