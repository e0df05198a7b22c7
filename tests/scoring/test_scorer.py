"""The Scorer API: criteria -> system prompt, pairs in one call, loader fixes, recorded settings."""

from __future__ import annotations

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from themis_rm.errors import ThemisInputError
from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import PreferencePair, ScoreRequest
from themis_rm.scoring import ASPECT, Scorer


@pytest.fixture(scope="module")
def pack():
    return load_prompt_pack("open")


@pytest.fixture(scope="module")
def scorer(tiny_model_dir, pack):
    return Scorer.from_pretrained(str(tiny_model_dir), dtype="fp32", device="cpu", prompts=pack)


@pytest.mark.parametrize(
    "layout_path", ["open_layout_path", pytest.param("official_prompts_path", marks=pytest.mark.real_data)]
)
def test_criterion_selects_the_exact_eval_prompt(tiny_model_dir, layout_path, request):
    import json

    path = request.getfixturevalue(layout_path)
    scorer = Scorer.from_pretrained(str(tiny_model_dir), dtype="fp32", device="cpu", prompts=str(path))
    published = json.loads(path.read_text())["eval_prompts"]
    assert scorer.system_prompt("runtime") == published["Runtime_Efficiency"]
    assert scorer.system_prompt("FULL") == published["Full"]
    assert scorer.system_prompt("none") is None


def test_score_under_a_criterion_equals_scoring_with_that_system_prompt(scorer):
    prompts, responses = (
        ["Write add(a, b)."] * 2,
        ["def add(a, b): return a + b", "def add(a, b): return a - b"],
    )
    by_name = scorer.score(prompts, responses, criteria="security")
    system = scorer.system_prompt("Security_Hardness")
    by_prompt = scorer.score_requests(
        [ScoreRequest(p, r, system) for p, r in zip(prompts, responses, strict=True)]
    ).rewards
    assert by_name == pytest.approx(by_prompt.tolist(), abs=1e-6)
    assert by_name != pytest.approx(scorer.score(prompts, responses), abs=1e-6), "the criterion must matter"


def test_aspect_mode_scores_each_pair_under_its_own_aspect(scorer):
    pairs = [
        PreferencePair("a", "Sort a list.", "sorted(xs)", "bubble(xs)", aspect="Runtime_Efficiency"),
        PreferencePair("b", "Read a file.", "with open(p) as f: ...", "f = open(p)", aspect="Memory_Efficiency"),
    ]
    both = scorer.score_pairs(pairs, criteria=ASPECT)
    for i, pair in enumerate(pairs):
        alone = scorer.score_pairs([pair], criteria=pair.aspect)
        assert both.chosen[i] == pytest.approx(alone.chosen[0], abs=1e-5)
        assert both.rejected[i] == pytest.approx(alone.rejected[0], abs=1e-5)


def test_scoring_without_criteria_needs_no_prompt_pack(tiny_model_dir):
    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu")  # official pack unreachable offline
    assert len(scorer.score(["p"], ["r"], criteria=None)) == 1
    assert scorer.settings()["dtype"] == "float32"


def test_missing_pad_token_falls_back_to_eos_in_tokenizer_and_model_config(tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.pad_token = None
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model.config.pad_token_id = None
    tokenizer.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    scorer = Scorer.from_pretrained(str(tmp_path), device="cpu")
    assert scorer.loaded.tokenizer.pad_token_id == scorer.loaded.tokenizer.eos_token_id
    assert scorer.loaded.model.config.pad_token_id == scorer.loaded.tokenizer.eos_token_id
    assert len(scorer.score(["a", "bb"], ["x", "y y y"])) == 2  # batch > 1 works


def test_multi_label_model_is_refused(tiny_model_dir, tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.num_labels = 2
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path)
    with pytest.raises(ThemisInputError, match="num_labels=1"):
        Scorer.from_pretrained(str(tmp_path), device="cpu")


def test_settings_record_model_dtype_criteria_and_pack_hash(scorer, pack):
    settings = scorer.settings("runtime,security")
    assert settings["criteria"] == "Runtime_Efficiency+Security_Hardness"
    assert settings["prompt_pack"]["sha256"] == pack.sha256
    assert settings["max_length"] == 4096 and settings["device"] == "cpu"
