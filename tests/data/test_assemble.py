"""Assembly: pairs per aspect, 15/60/25 criteria prompts, repository split, chat-template length, decontamination."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytest.importorskip("datatrove")

from themis_rm.criteria import CRITERIA, PromptSampler
from themis_rm.data.assemble import (
    AssembleConfig,
    ChatBudget,
    Excerpt,
    PairBuilder,
    change_window,
    split_of,
    training_row,
)
from themis_rm.data.base import Document
from themis_rm.data.decontam import DecontamConfig, DecontaminationFilter, ngrams
from themis_rm.data.records import stable_int
from themis_rm.packs import load_prompt_pack
from themis_rm.readers import read_records

FC, RE = "Functional_Correctness", "Runtime_Efficiency"


def record(doc_id="r1", aspects=(FC, RE), repo="acme/kv", **meta) -> Document:
    base = {"old_contents": "x = 1\n", "message": "Fix x", "language": "Python", "path": "x.py", "repo": repo}
    base["commit"] = "c0ffee"
    return Document("x = 2\n", doc_id, metadata={**base, "aspects": list(aspects), **meta})


def build(docs, **options):
    step = PairBuilder(AssembleConfig(**{"prompt_pack": "open", **options}))
    return list(step.run(iter(docs))), step


def test_one_pair_per_aspect_plus_the_bug_pair_in_training_schema():
    pairs, step = build([record(buggy_code="x = 3\n", instruction="Set x to two.")])
    assert [(p.id, p.metadata["aspect"], p.metadata["rejected"]) for p in pairs] == [
        ("r1:Functional_Correctness", FC, "x = 1\n"),
        ("r1:Runtime_Efficiency", RE, "x = 1\n"),
        ("r1:bug", FC, "x = 3\n"),
    ]
    rows = [training_row(None, p) for p in pairs]
    fields = {"id", "system", "input", "chosen", "rejected", "aspect", "language", "repo", "commit", "path", "lines"}
    assert all(set(r) == fields for r in rows)
    assert {(r["repo"], r["commit"], r["path"], r["lines"]) for r in rows} == {("acme/kv", "c0ffee", "x.py", None)}
    assert {r["input"] for r in rows} == {"Set x to two."} and {r["chosen"] for r in rows} == {"x = 2\n"}
    sampler = PromptSampler(load_prompt_pack("open"), seed=0)
    assert [p.metadata["system"] for p in pairs] == [
        sampler.sample(p.metadata["aspect"], stable_int(p.id) % 2**62) or "" for p in pairs
    ]
    assert step.stats["pairs"].total == 3


def test_records_without_an_instruction_get_a_prompt_from_the_message():
    (pair, _), _ = build([record()])
    assert pair.metadata["input"] == "Fix x\n\nWrite the complete Python file `x.py`."


def test_system_prompts_follow_15_60_25():
    pack = load_prompt_pack("open")
    pairs, _ = build([record(f"r{i}", aspects=[CRITERIA[i % 5]]) for i in range(3000)])
    kinds = Counter()
    for p in pairs:
        system = p.metadata["system"]
        if system == "":
            kinds["none"] += 1
        elif system == pack.training_prompt((p.metadata["aspect"],)):
            kinds["single"] += 1
        else:
            kinds["full"] += 1
            assert all(pack.components[key] in system for key in CRITERIA)
    shares = {k: v / len(pairs) for k, v in kinds.items()}
    assert abs(shares["none"] - 0.15) < 0.03 and abs(shares["single"] - 0.60) < 0.03
    assert abs(shares["full"] - 0.25) < 0.03
    no_prompt = training_row(None, next(p for p in pairs if p.metadata["system"] == ""))
    assert no_prompt["system"] == ""  # present and empty: "no system prompt", not "trainer, sample one"


def test_default_pack_resolves_like_the_rest_of_the_package(open_layout_path, monkeypatch):
    from themis_rm.errors import PromptPackError

    assert AssembleConfig().prompt_pack is None
    with pytest.raises(PromptPackError, match="official"):
        PairBuilder(AssembleConfig())  # offline, nothing cached: fails when the pipeline is built
    official = open_layout_path  # any JSON pack in the official layout
    monkeypatch.setenv("THEMIS_PROMPTS", str(official))
    (pair,), _ = build([record(aspects=[FC])], prompt_pack=None)
    expected = PromptSampler(load_prompt_pack(str(official)), seed=0).sample(FC, stable_int(pair.id) % 2**62)
    assert pair.metadata["system"] == (expected if expected is not None else "")


def test_split_is_by_repository():
    pairs, _ = build([record(f"r{i}", repo=f"org/repo{i % 40}") for i in range(400)], validation_fraction=0.3)
    splits: dict[str, set[str]] = {}
    for p in pairs:
        splits.setdefault(p.metadata["repo"], set()).add(p.metadata["split"])
    assert all(len(s) == 1 for s in splits.values())
    held_out = sum("validation" in s for s in splits.values())
    assert 4 <= held_out <= 20
    assert split_of("Org/Repo1", 0.3) == split_of("org/repo1", 0.3)


def test_chat_budget_measures_under_the_chat_template(tmp_path, qwen_tokenizer):
    qwen_tokenizer.save_pretrained(tmp_path / "tok")
    long = record("long", aspects=[FC], old_contents="y = [" + "1, " * 3000 + "]\n")
    pairs, _ = build([record("short", aspects=[FC]), long])
    step = ChatBudget(str(tmp_path / "tok"), max_tokens=2000, over_budget="drop")
    kept = list(step.run(iter(pairs)))
    assert [p.id for p in kept] == ["short:Functional_Correctness"]
    assert step.stats["dropped_too_long"].total == 1


def test_chat_length_of_a_no_prompt_pair_has_no_system_turn(tmp_path, qwen_tokenizer):
    from themis_rm.render import ChatRenderer

    qwen_tokenizer.save_pretrained(tmp_path / "tok")
    meta = {"system": "", "input": "Fix x", "chosen": "x = 2\n", "rejected": "x = 1\n", "aspect": FC}
    step = ChatBudget(str(tmp_path / "tok"), max_tokens=2000)
    list(step.run(iter([Document("x = 2\n", "p", metadata=meta)])))
    bare = ChatRenderer(qwen_tokenizer).render("Fix x", "x = 2\n", None)
    assert step.stats["chat_tokens"].total == len(bare.input_ids)


def _module(changed_line: int, value: str, lines: int = 400) -> str:
    return "".join(f"value_{i} = {value if i == changed_line else i}\n" for i in range(lines))


def test_a_pair_over_budget_is_cut_to_the_same_window_around_its_change(tmp_path, qwen_tokenizer):
    """Issue 20, item 4: the trainer would cut the end of both 400-line files and lose the change at line 301;
    the window keeps it, with as much context as fits, and says which lines it shows."""
    from themis_rm.render import ChatRenderer

    qwen_tokenizer.save_pretrained(tmp_path / "tok")
    doc = record("r", aspects=[FC], old_contents=_module(300, "None"))
    doc.text = _module(300, "compute()")
    pairs, _ = build([doc])
    step = ChatBudget(str(tmp_path / "tok"), max_tokens=512)
    (kept,) = list(step.run(iter(pairs)))
    meta = kept.metadata
    first, last = meta["lines"]
    assert first <= 301 <= last and last - first < 400 and step.stats["windowed"].total == 1
    assert "value_300 = compute()" in meta["chosen"] and "value_300 = None" in meta["rejected"]
    assert meta["chosen"].replace("compute()", "None") == meta["rejected"] and kept.text == meta["chosen"]
    assert meta["input"] == f"Fix x\n\nWrite lines {first}-{last} of the Python file `x.py`."
    renderer = ChatRenderer(qwen_tokenizer)
    lengths = [
        len(renderer.render(meta["input"], meta[s], meta["system"] or None).input_ids) for s in ("chosen", "rejected")
    ]
    assert max(lengths) <= 512
    wider = change_window(doc.text, doc.metadata["old_contents"], (last - first) // 2 + 1)
    wider_input = f"Fix x\n\nWrite lines {wider.first}-{wider.last} of the Python file `x.py`."
    assert len(renderer.render(wider_input, wider.chosen, meta["system"] or None).input_ids) > 512  # the widest
    assert training_row(None, kept)["lines"] == [first, last]


def test_a_change_larger_than_the_budget_and_equal_texts_are_dropped_and_counted(tmp_path, qwen_tokenizer):
    qwen_tokenizer.save_pretrained(tmp_path / "tok")
    big = record("big", aspects=[FC], old_contents="".join(f"old_{i} = {i}\n" for i in range(400)))
    big.text = "".join(f"new_{i} = {i}\n" for i in range(400))
    same = record("same", aspects=[FC], old_contents="x = 2\n")
    pairs, _ = build([big, same, record("fine", aspects=[FC])])
    step = ChatBudget(str(tmp_path / "tok"), max_tokens=512)
    assert [p.id for p in step.run(iter(pairs))] == ["fine:Functional_Correctness"]
    assert step.stats["dropped_change_too_long"].total == step.stats["dropped_identical"].total == 1


def test_change_window_keeps_the_changed_lines_and_the_context_asked_for():
    old = "a\nb\nc\nd\ne\n"
    assert change_window("a\nb\nX\nd\ne\n", old, 1) == Excerpt("b\nX\nd\n", "b\nc\nd\n", 2, 4)
    grown = change_window("a\nb\nc\nY\nZ\nd\ne\n", old, 0)  # an insertion: lines 4-5 of the new file
    assert (grown.chosen, grown.rejected, grown.first, grown.last) == ("Y\nZ\n", "", 4, 5)
    assert change_window("a\nb\nX\nd\ne\n", old, 10).chosen == "a\nb\nX\nd\ne\n"


def test_an_unloadable_tokenizer_fails_when_the_step_is_built(tmp_path):
    from themis_rm.errors import ThemisInputError

    with pytest.raises(ThemisInputError, match=r"assemble\.tokenizer: .*or null to turn the token budget off"):
        ChatBudget(str(tmp_path / "nowhere"), max_tokens=512)


@pytest.mark.real_data
def test_decontamination_leaves_zero_overlapping_13grams(shared_dir):
    benchmarks = [str(shared_dir / "data" / "pairs" / name) for name in ("humanevalpack.jsonl", "mdeval.jsonl")]
    bench = [row for path in benchmarks for _, row in read_records(path)]
    docs = [record(f"clean{i}", old_contents=f"value_{i} = compute({i})\n") for i in range(20)]
    docs += [
        Document(bench[0]["chosen"], "leak-chosen", metadata={**record().metadata}),
        Document("x = 2\n", "leak-prompt", metadata={**record().metadata, "message": bench[5]["prompt"]}),
        Document("x", "leak-old", metadata={**record().metadata, "old_contents": "# " + bench[600]["rejected"]}),
        Document("x", "leak-instr", metadata={**record().metadata, "instruction": bench[9]["prompt"].upper()}),
    ]
    step = DecontaminationFilter(DecontamConfig(benchmarks=benchmarks))
    kept = list(step.run(iter(docs)))
    assert sorted(d.id for d in kept) == sorted(f"clean{i}" for i in range(20))
    assert step.stats["dropped_contaminated"].total == 4
    bench_grams = {g for row in bench for f in ("prompt", "chosen", "rejected") for g in ngrams(row[f], 13)}
    texts = [t for d in kept for t in (d.text, *(str(v) for v in d.metadata.values()))]
    assert sum(g in bench_grams for t in texts for g in ngrams(t, 13)) == 0


def test_shipped_open_pack_and_config_values_are_checked():
    with pytest.raises(Exception, match="validation_fraction"):
        AssembleConfig(validation_fraction=1.0)
    assert json.dumps(AssembleConfig().decontam.fields) == '["prompt", "chosen", "rejected"]'
