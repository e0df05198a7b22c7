"""Readers and validation for preference pairs and responses (``themis_rm.pairs``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from themis_rm.criteria import CRITERIA
from themis_rm.errors import ThemisInputError
from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import (
    FieldMap,
    InvalidRow,
    PreferencePair,
    ResponseRow,
    input_kind,
    load_pairs,
    load_responses,
)

# Commas, quotes, tabs, newlines and non-ASCII text: what breaks CSV quoting and encodings first.
PAIRS = [
    PreferencePair(
        id="HUMANEVAL_PACK_0001",
        prompt="Write a function that adds two numbers.",
        chosen='def add(a, b):\n    """Add, "quoted", a, b."""\n    return a + b\n',
        rejected="def add(a, b):\n\treturn a - b",
        aspect="Functional_Correctness",
        language="Python",
        subset="HUMANEVAL_PACK",
    ),
    PreferencePair(
        id="MDEVAL_0002",
        prompt="Écris une fonction qui renvoie « 中文 » 🙂",
        chosen='fn f() -> &\'static str { "中文" }',
        rejected="fn f() -> String { String::new() }",
        aspect="Runtime_Efficiency",
        language="Rust",
        subset=None,
    ),
    PreferencePair(
        id="NOFUNEVAL_0003",
        prompt="Free the buffer, line 1\nline 2, with a comma",
        chosen="free(buf);\nbuf = NULL;",
        rejected="free(buf);\nfree(buf);",
        aspect="Security_Hardness",
        language=None,
        subset="NOFUNEVAL",
    ),
]
COLUMNS = ["id", "prompt", "chosen", "rejected", "aspect", "language", "subset"]


def _records(pairs: list[PreferencePair] = PAIRS) -> list[dict]:
    return [{name: getattr(pair, name) for name in COLUMNS} for pair in pairs]


def _write_jsonl(path: Path, rows: list) -> Path:
    """One JSON value per line; a string is written as the raw line (for malformed input)."""
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _single_criterion(pack) -> Callable[[str], str]:
    """A resolver for ``load_pairs``: an aspect must name exactly one criterion of ``pack``."""

    def resolve(aspect: str) -> str:
        selection = pack.resolve(aspect)
        if len(selection) != 1:
            raise ThemisInputError(f"aspect {aspect!r} must name exactly one criterion, got {list(selection)}")
        return selection[0]

    return resolve


@pytest.fixture(scope="module")
def resolve_aspect() -> Callable[[str], str]:
    return _single_criterion(load_prompt_pack("open"))


# ------------------------------------------------------------------------------------------------ formats
def _as_jsonl(tmp: Path) -> tuple[Path, dict]:
    return _write_jsonl(tmp / "pairs.jsonl", _records()), {}


def _as_json_list(tmp: Path) -> tuple[Path, dict]:
    path = tmp / "pairs.json"
    path.write_text(json.dumps(_records(), indent=2), encoding="utf-8")
    return path, {}


def _as_json_rows(tmp: Path) -> tuple[Path, dict]:
    path = tmp / "pairs.json"
    path.write_text(json.dumps({"rows": _records()}), encoding="utf-8")
    return path, {}


def _as_parquet(tmp: Path) -> tuple[Path, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(_records()), path)
    return path, {}


def _as_csv(tmp: Path, delimiter: str = ",", suffix: str = ".csv", encoding: str = "utf-8") -> tuple[Path, dict]:
    path = tmp / f"pairs{suffix}"
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(_records())  # None becomes an empty cell
    return path, {}


def _as_tsv(tmp: Path) -> tuple[Path, dict]:
    return _as_csv(tmp, delimiter="\t", suffix=".tsv")


def _as_excel_csv(tmp: Path) -> tuple[Path, dict]:
    """Excel's "CSV UTF-8" starts with a byte-order mark, which must not end up in the first column's name."""
    return _as_csv(tmp, encoding="utf-8-sig")


def _as_hf_dataset(tmp: Path) -> tuple[Path, dict]:
    import datasets

    path = tmp / "pairs_ds"
    datasets.Dataset.from_list(_records()).save_to_disk(str(path))
    return path, {}


def _as_hf_dataset_dict(tmp: Path) -> tuple[Path, dict]:
    import datasets

    path = tmp / "pairs_dd"
    decoy = datasets.Dataset.from_list(_records()[::-1])
    datasets.DatasetDict({"train": decoy, "test": datasets.Dataset.from_list(_records())}).save_to_disk(str(path))
    return path, {"split": "test"}


@pytest.mark.parametrize(
    "write",
    [
        _as_jsonl,
        _as_json_list,
        _as_json_rows,
        _as_parquet,
        _as_csv,
        _as_tsv,
        _as_excel_csv,
        _as_hf_dataset,
        _as_hf_dataset_dict,
    ],
    ids=lambda write: write.__name__.removeprefix("_as_"),
)
def test_every_format_loads_the_same_pairs(tmp_path, write):
    path, options = write(tmp_path)
    loaded = load_pairs(path, **options)
    assert loaded.rows == PAIRS
    assert loaded.skipped == []


def test_dataset_dict_with_several_splits_asks_for_split(tmp_path):
    path, _ = _as_hf_dataset_dict(tmp_path)
    with pytest.raises(ThemisInputError) as excinfo:
        load_pairs(path)
    message = str(excinfo.value)
    assert str(path) in message and "--split" in message and "['test', 'train']" in message


def test_directory_that_is_no_saved_dataset_raises_input_error(tmp_path):
    with pytest.raises(ThemisInputError, match="save_to_disk"):
        load_pairs(tmp_path)


def test_missing_relative_path_is_reported_not_sent_to_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ThemisInputError, match=r"data/pairs\.jsonl: no such file"):
        load_pairs("data/pairs.jsonl")


def test_unsupported_suffix_names_the_supported_formats(tmp_path):
    path = tmp_path / "pairs.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ThemisInputError, match=r"unsupported input format '\.xlsx'.*\.jsonl"):
        load_pairs(path)


# -------------------------------------------------------------------------------------- fields and shapes
def test_field_map_reads_renamed_columns(tmp_path):
    rows = [
        {
            "uid": "q1",
            "question": "Sort a list.",
            "good": "sorted(xs)",
            "bad": "xs.sort",
            "kind": "fc",
            "prompt": "ignored: not the mapped prompt column",
        }
    ]
    path = _write_jsonl(tmp_path / "renamed.jsonl", rows)
    fields = FieldMap(id="uid", prompt="question", chosen="good", rejected="bad", aspect="kind")
    assert load_pairs(path, fields).rows == [
        PreferencePair(id="q1", prompt="Sort a list.", chosen="sorted(xs)", rejected="xs.sort", aspect="fc")
    ]
    assert input_kind(path, fields) == "pairs"
    assert input_kind(path) == "responses"  # the default names are not there


def test_missing_id_falls_back_to_row_number(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"id": " ", "prompt": "p", "chosen": "a", "rejected": "b"},
    ]
    path = _write_jsonl(tmp_path / "noid.jsonl", rows)
    assert [pair.id for pair in load_pairs(path).rows] == ["row-1", "row-2"]


def test_message_list_prompt_is_kept_as_messages(tmp_path):
    prompt = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Reverse a string."}]
    path = _write_jsonl(
        tmp_path / "msgs.jsonl",
        [{"id": "m", "prompt": prompt, "chosen": "s[::-1]", "rejected": "reversed(s)"}],
    )
    assert load_pairs(path).rows == [PreferencePair(id="m", prompt=prompt, chosen="s[::-1]", rejected="reversed(s)")]


def test_conversations_give_last_assistant_turn_and_prompt_from_context(tmp_path):
    context = [{"role": "user", "content": "Reverse a string."}]
    row = {
        "id": "c",
        "chosen": [*context, {"role": "assistant", "content": "s[::-1]"}],
        "rejected": [*context, {"role": "assistant", "content": "s.reverse()"}],
    }
    path = _write_jsonl(tmp_path / "conv.jsonl", [row])
    assert load_pairs(path).rows == [PreferencePair(id="c", prompt=context, chosen="s[::-1]", rejected="s.reverse()")]


def test_conversations_with_different_contexts_are_rejected(tmp_path):
    row = {
        "chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "x"}],
        "rejected": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "y"}],
    }
    path = _write_jsonl(tmp_path / "conv.jsonl", [row])
    with pytest.raises(ThemisInputError) as excinfo:
        load_pairs(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:1: field 'rejected'") and "context differs" in message


def test_conversation_must_end_with_assistant_turn(tmp_path):
    row = {"chosen": [{"role": "user", "content": "A"}], "rejected": "y"}
    path = _write_jsonl(tmp_path / "conv.jsonl", [row])
    with pytest.raises(ThemisInputError, match=r":1: field 'chosen' conversation must end with an assistant"):
        load_pairs(path)


def test_assistant_only_conversations_without_prompt_report_missing_prompt(tmp_path):
    row = {
        "chosen": [{"role": "assistant", "content": "x"}],
        "rejected": [{"role": "assistant", "content": "y"}],
    }
    path = _write_jsonl(tmp_path / "conv.jsonl", [row])
    with pytest.raises(ThemisInputError, match=r":1: field 'prompt' is missing"):
        load_pairs(path)


def test_blank_optional_fields_read_as_none(tmp_path):
    row = {
        "id": "b",
        "prompt": "p",
        "chosen": "a",
        "rejected": "b",
        "aspect": "",
        "language": " ",
        "subset": None,
    }
    path = _write_jsonl(tmp_path / "blank.jsonl", [row])
    assert load_pairs(path).rows == [PreferencePair(id="b", prompt="p", chosen="a", rejected="b")]


# ------------------------------------------------------------------------------------------- validation
BAD_FIELDS = {
    "missing chosen": ({"prompt": "p", "rejected": "b"}, "chosen", "is missing"),
    "missing prompt": ({"chosen": "a", "rejected": "b"}, "prompt", "is missing"),
    "non-string rejected": (
        {"prompt": "p", "chosen": "a", "rejected": 7},
        "rejected",
        "must be a string, got int",
    ),
    "prompt object": (
        {"prompt": {"text": "p"}, "chosen": "a", "rejected": "b"},
        "prompt",
        "must be a string",
    ),
    "empty chosen": ({"prompt": "p", "chosen": "", "rejected": "b"}, "chosen", "is empty"),
    "whitespace rejected": ({"prompt": "p", "chosen": "a", "rejected": " \n\t"}, "rejected", "is empty"),
    "empty conversation prompt": (
        {"prompt": [], "chosen": "a", "rejected": "b"},
        "prompt",
        "empty conversation",
    ),
    "bad message": (
        {"prompt": [{"role": "user", "content": 3}], "chosen": "a", "rejected": "b"},
        "prompt",
        "message 0 must be an object",
    ),
    "empty assistant turn": (
        {"prompt": "p", "chosen": [{"role": "assistant", "content": " "}], "rejected": "b"},
        "chosen",
        "is empty",
    ),
    "non-string language": (
        {"prompt": "p", "chosen": "a", "rejected": "b", "language": ["py"]},
        "language",
        "must be a string, got list",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_bad_field_error_names_file_line_and_field(tmp_path, case):
    record, field_name, reason = BAD_FIELDS[case]
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    path = _write_jsonl(tmp_path / "bad.jsonl", [good, "", record, good])  # line 2 is blank, line 3 is bad
    with pytest.raises(ThemisInputError) as excinfo:
        load_pairs(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:3: field '{field_name}' "), message
    assert reason in message


def test_json_list_error_names_item_number(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([*_records(), {"prompt": "p", "chosen": "a"}]), encoding="utf-8")
    with pytest.raises(ThemisInputError, match=rf"^{path}:4: field 'rejected' is missing"):
        load_pairs(path)


def test_json_list_item_that_is_no_object_names_item_number(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([_records()[0], "not a pair"]), encoding="utf-8")
    with pytest.raises(ThemisInputError, match=rf"^{path}:2: expected a JSON object, got str"):
        load_pairs(path)


def test_invalid_utf8_bytes_error_names_line(tmp_path):
    path = tmp_path / "bytes.jsonl"
    good = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}).encode()
    bad = b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "b"}'  # Latin-1 byte, not UTF-8
    path.write_bytes(b"\n".join([good, good, bad, good]) + b"\n")
    with pytest.raises(ThemisInputError) as excinfo:
        load_pairs(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:3: invalid UTF-8 at byte 30"), message


@pytest.mark.parametrize(
    ("line", "field_name"),
    [
        ('{"prompt": "p", "chosen": "a\\ud800b", "rejected": "b"}', "chosen"),
        ('{"prompt": [{"role": "user", "content": "\\udfff"}], "chosen": "a", "rejected": "b"}', "prompt"),
    ],
    ids=["response", "message"],
)
def test_lone_surrogate_escape_error_names_line_and_field(tmp_path, line, field_name):
    path = _write_jsonl(tmp_path / "surrogate.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}, line])
    with pytest.raises(ThemisInputError) as excinfo:
        load_pairs(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:2: field '{field_name}' is not valid UTF-8"), message
    assert "surrogate" in message


def test_invalid_json_line_error_names_line(tmp_path):
    path = _write_jsonl(tmp_path / "broken.jsonl", [_records()[0], '{"prompt": "p", "chosen": '])
    with pytest.raises(ThemisInputError, match=rf"^{path}:2: not valid JSON"):
        load_pairs(path)


def test_unknown_aspect_error_names_field_and_valid_names(tmp_path, resolve_aspect):
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b", "aspect": "runtime"},
        {"prompt": "p", "chosen": "a", "rejected": "b", "aspect": "Speed"},
    ]
    path = _write_jsonl(tmp_path / "aspect.jsonl", rows)
    with pytest.raises(ThemisInputError) as excinfo:
        load_pairs(path, resolve_aspect=resolve_aspect)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:2: field 'aspect' is not a known criterion"), message
    assert "'Speed'" in message and "Functional_Correctness" in message


def test_aspect_naming_several_criteria_is_rejected(tmp_path, resolve_aspect):
    path = _write_jsonl(tmp_path / "aspect.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b", "aspect": "Full"}])
    with pytest.raises(ThemisInputError, match=r":1: field 'aspect' .*exactly one criterion"):
        load_pairs(path, resolve_aspect=resolve_aspect)


def test_aspect_aliases_resolve_to_canonical_keys(tmp_path, resolve_aspect):
    given = ["runtime", "SECURITY", "fc", "readability", "memory_efficiency"]
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b", "aspect": aspect} for aspect in given]
    path = _write_jsonl(tmp_path / "aliases.jsonl", rows)
    assert [pair.aspect for pair in load_pairs(path, resolve_aspect=resolve_aspect).rows] == [
        "Runtime_Efficiency",
        "Security_Hardness",
        "Functional_Correctness",
        "Readability_Maintainability",
        "Memory_Efficiency",
    ]
    assert [pair.aspect for pair in load_pairs(path).rows] == given  # no resolver: kept as written


# ------------------------------------------------------------------------------------------ skip_invalid
def test_skip_invalid_reports_each_bad_row_and_keeps_valid_ones_in_order(tmp_path, resolve_aspect):
    def good(i: int) -> dict:
        return {"id": f"ok{i}", "prompt": "p", "chosen": "a", "rejected": "b", "aspect": "fc"}

    lines = [
        good(1),
        {"id": "x", "prompt": "p", "rejected": "b"},  # 2: missing chosen
        "{not json",  # 3
        good(4),
        "",  # 5: blank lines are not rows
        {"id": "y", "prompt": "p", "chosen": "a", "rejected": "b", "aspect": "Speed"},  # 6
        "[1, 2]",  # 7: not an object
        good(8),
    ]
    path = tmp_path / "mixed.jsonl"
    _write_jsonl(path, lines)
    with path.open("ab") as handle:
        handle.write(b'{"chosen": "\xff"}\n')  # 9: not UTF-8
        handle.write(json.dumps(good(10)).encode() + b"\n")

    loaded = load_pairs(path, skip_invalid=True, resolve_aspect=resolve_aspect)

    assert [pair.id for pair in loaded.rows] == ["ok1", "ok4", "ok8", "ok10"]
    assert [(s.source, s.row, s.field) for s in loaded.skipped] == [
        (str(path), 2, "chosen"),
        (str(path), 3, ""),
        (str(path), 6, "aspect"),
        (str(path), 7, ""),
        (str(path), 9, ""),
    ]
    assert all(isinstance(s, InvalidRow) for s in loaded.skipped)
    assert loaded.skipped[0].reason == "is missing"
    assert loaded.skipped[1].reason.startswith("not valid JSON")
    assert loaded.skipped[3].reason == "expected a JSON object, got list"
    assert loaded.skipped[4].reason.startswith("invalid UTF-8")
    assert str(loaded.skipped[0]) == f"{path}:2: field 'chosen' is missing"


def test_skip_invalid_off_raises_on_first_bad_row(tmp_path):
    path = _write_jsonl(tmp_path / "two_bad.jsonl", [_records()[0], {"prompt": "p"}, "{not json"])
    with pytest.raises(ThemisInputError, match=r":2: field 'chosen' is missing"):
        load_pairs(path)


# ---------------------------------------------------------------------------------------------- responses
def test_load_responses_reads_prompt_and_response(tmp_path):
    rows = [
        {"id": "r1", "prompt": "Sum a list.", "response": "sum(xs)", "aspect": "fc"},
        {"prompt": [{"role": "user", "content": "Hi"}], "response": "Hello"},
        {"id": "r3", "response": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
    ]
    path = _write_jsonl(tmp_path / "responses.jsonl", rows)
    assert load_responses(path).rows == [
        ResponseRow(id="r1", prompt="Sum a list.", response="sum(xs)", aspect="fc"),
        ResponseRow(id="row-2", prompt=[{"role": "user", "content": "Hi"}], response="Hello"),
        ResponseRow(id="r3", prompt=[{"role": "user", "content": "Q"}], response="A"),
    ]


def test_load_responses_bad_row_names_file_line_and_field(tmp_path):
    path = _write_jsonl(tmp_path / "responses.jsonl", [{"prompt": "p", "response": "a"}, {"prompt": "p"}])
    with pytest.raises(ThemisInputError, match=rf"^{path}:2: field 'response' is missing"):
        load_responses(path)
    loaded = load_responses(path, skip_invalid=True)
    assert len(loaded.rows) == 1 and [(s.row, s.field) for s in loaded.skipped] == [(2, "response")]


def test_input_kind_tells_pairs_from_responses(tmp_path):
    pairs, _ = _as_jsonl(tmp_path)
    responses = _write_jsonl(tmp_path / "responses.jsonl", [{"prompt": "p", "response": "a"}])
    assert input_kind(pairs) == "pairs"
    assert input_kind(responses) == "responses"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ThemisInputError, match="contains no rows"):
        input_kind(empty)


# ------------------------------------------------------------------------------------------------ real data
@pytest.mark.real_data
def test_shared_pair_files_load_without_skips(shared_dir, resolve_aspect):
    files = sorted((shared_dir / "data" / "pairs").glob("*.jsonl"))
    assert files, "no pair files under shared/data/pairs"
    total = 0
    aspects: set[str | None] = set()
    for path in files:
        with path.open(encoding="utf-8") as handle:
            expected = sum(1 for line in handle if line.strip())
        loaded = load_pairs(path, skip_invalid=True, resolve_aspect=resolve_aspect)
        assert loaded.skipped == [], f"{path.name}: {loaded.skipped[:3]}"
        assert len(loaded.rows) == expected, path.name
        assert len({pair.id for pair in loaded.rows}) == expected, f"{path.name}: duplicate ids"
        total += expected
        aspects.update(pair.aspect for pair in loaded.rows)
    assert total == 2646
    assert aspects == set(CRITERIA)
