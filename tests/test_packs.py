"""Where prompt packs come from: bundled, a local file, ``THEMIS_PROMPTS``, or the official fetch-verify-cache path.

The official source files are never downloaded here. The tests synthesize two Python files shaped like the
authors' (carrying the bundled open pack in the official layout, so no shared/ material is needed), serve them
from a real HTTP server on 127.0.0.1, and check that they are verified, parsed without being executed, and cached.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pytest

from themis_rm import packs
from themis_rm.criteria import CRITERIA, FULL, pack_from_layout
from themis_rm.errors import PromptPackError
from themis_rm.packs import (
    EVAL_SCRIPT,
    OFFICIAL_COMMIT,
    OFFICIAL_NAME,
    PROMPT_MAPPER,
    PinnedFile,
    extract_official_layout,
    fetch_official_pack,
    load_prompt_pack,
    official_cache_path,
)
from themis_rm.tiny import open_pack_layout


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path) -> Path:
    """A cache per test, so a pack cached by one test never satisfies another."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("THEMIS_CACHE", str(cache))
    monkeypatch.delenv("THEMIS_PROMPTS_BASE_URL", raising=False)
    return cache


@pytest.fixture(scope="module")
def official_layout(official_prompts_path) -> dict:
    return json.loads(official_prompts_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def layout() -> dict:
    """The open pack in the official file's layout: the synthesized sources carry it (mechanics, not wording)."""
    return open_pack_layout()


@pytest.fixture(scope="module")
def layout_pack(layout):
    return pack_from_layout(layout, name="layout")


@pytest.fixture(scope="module", params=["open", pytest.param("official", marks=pytest.mark.real_data)])
def json_pack(request, open_layout_path) -> tuple[Path, object]:
    """(a pack file in the ``themis_system_prompts.json`` layout, the pack it must load as)."""
    if request.param == "open":
        return open_layout_path, load_prompt_pack("open")
    return request.getfixturevalue("official_prompts_path"), request.getfixturevalue("official_pack")


def _same_prompts(a, b) -> bool:
    return (a.base, dict(a.components), a.sampling) == (b.base, dict(b.components), b.sampling)


# ------------------------------------------------------------------------------------- local packs
@pytest.mark.real_data
def test_open_pack_is_bundled_wording_not_the_official_one(official_layout):
    pack = load_prompt_pack("open")

    assert pack.name == "open"
    assert pack.keys == CRITERIA
    assert pack.base != official_layout["train_components"]["base"]
    for key in CRITERIA:
        assert pack.components[key] != official_layout["train_components"][key]
    for key, published in official_layout["eval_prompts"].items():
        assert pack.eval_prompt(pack.resolve(key)) != published


def test_open_pack_loads_offline_without_a_cache(_private_cache):
    load_prompt_pack("open")

    assert not _private_cache.exists()


def test_json_path_loads_the_shared_pack(json_pack):
    path, expected = json_pack
    for spec in (path, str(path)):
        pack = load_prompt_pack(spec)

        assert pack.name == path.name
        assert _same_prompts(pack, expected)
        assert pack.sha256 == expected.sha256


def test_themis_prompts_env_var_selects_the_pack(monkeypatch, json_pack):
    path, expected = json_pack
    monkeypatch.setenv("THEMIS_PROMPTS", str(path))

    assert load_prompt_pack().sha256 == expected.sha256
    assert load_prompt_pack("open").name == "open"  # an explicit spec wins over the variable

    monkeypatch.setenv("THEMIS_PROMPTS", "open")
    assert load_prompt_pack().name == "open"


def test_toml_path_loads_a_complete_pack(tmp_path):
    target = tmp_path / "house_style.toml"
    with resources.as_file(resources.files("themis_rm.resources") / "open_criteria.toml") as bundled:
        shutil.copyfile(bundled, target)

    pack = load_prompt_pack(target)

    assert pack.name == "house_style"
    assert pack.sha256 == load_prompt_pack("open").sha256


def test_nonexistent_pack_path_raises_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "prompts.json"

    with pytest.raises(PromptPackError) as caught:
        load_prompt_pack(missing)

    message = str(caught.value)
    assert repr(str(missing)) in message
    assert "--prompt-pack" in message
    assert "THEMIS_PROMPTS" in message


def test_unreadable_json_pack_raises_naming_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(PromptPackError, match=re.escape(f"{path}: cannot read prompt pack JSON")):
        load_prompt_pack(path)


# ------------------------------------------------------------------------------ official pack, offline
def test_official_cache_path_lives_under_themis_cache(_private_cache):
    assert official_cache_path() == _private_cache / "prompts" / f"themis-official-{OFFICIAL_COMMIT[:12]}.json"


@pytest.mark.parametrize("spec", ["official", None])
def test_offline_without_cache_error_tells_how_to_get_a_pack(spec):
    with pytest.raises(PromptPackError) as caught:
        load_prompt_pack(spec)

    message = str(caught.value)
    assert f"not cached at {official_cache_path()}" in message
    assert "network is off" in message
    assert "themis criteria --fetch" in message
    assert "--prompt-pack" in message
    assert "THEMIS_PROMPTS" in message
    assert "--prompt-pack open" in message


def test_hf_hub_offline_alone_keeps_the_network_off(monkeypatch):
    monkeypatch.delenv("THEMIS_OFFLINE")

    with pytest.raises(PromptPackError, match="network is off"):
        load_prompt_pack("official")


def test_corrupt_cached_pack_raises_with_the_fix():
    cached = official_cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_text("{truncated", encoding="utf-8")

    with pytest.raises(PromptPackError, match=r"cannot be read .*themis criteria --fetch"):
        load_prompt_pack("official")


# ------------------------------------------------------------------- synthesized official source files
def _fstring_literal(text: str) -> str:
    """``text`` as a placeholder-free triple-quoted f-string literal, newlines kept as in the authors' file."""
    escaped = text.replace("\\", "\\\\").replace("{", "{{").replace("}", "}}").replace('"', '\\"').replace("\r", "\\r")
    return f'f"""{escaped}"""'


def _eval_script(eval_prompts: dict[str, str], marker: Path) -> str:
    entries = "".join(f"    {key!r}: {text!r},\n" for key, text in eval_prompts.items())
    return (
        '"""Synthesized stand-in shaped like Evaluation_Scripts/coderewardbench-seqcls.py."""\n'
        "import pathlib\n\n"
        f"pathlib.Path({str(marker)!r}).write_text('eval script executed')\n"
        'raise SystemExit("executed!")\n\n'
        f"SYSTEM_PROMPT_MAP = {{\n{entries}}}\n\n\n"
        "def main():\n"
        "    return SYSTEM_PROMPT_MAP\n\n\n"
        'if __name__ == "__main__":\n'
        "    main()\n"
    )


_MAPPER_VARIABLES = {
    "base_system_prompt": "base",
    "readability_prompt": "Readability_Maintainability",
    "runtime_prompt": "Runtime_Efficiency",
    "memory_prompt": "Memory_Efficiency",
    "security_prompt": "Security_Hardness",
    "functional_prompt": "Functional_Correctness",
}


def _mapper_script(components: dict[str, str], marker: Path) -> str:
    assignments = "".join(
        f"    {variable} = {_fstring_literal(components[key])}\n" for variable, key in _MAPPER_VARIABLES.items()
    )
    return (
        '"""Synthesized stand-in shaped like Dataset/Prompts/system_prompt_mapper.py."""\n'
        "import pathlib\n"
        "import random\n\n"
        f"pathlib.Path({str(marker)!r}).write_text('mapper executed')\n"
        'raise SystemExit("executed!")\n\n\n'
        "def system_prompt_map(example, tokenizer, no_criteria_cumulative_probability=0.15, "
        "all_criteria_cumulative_probability=0.75):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('function executed')\n"
        f"{assignments}"
        "    aspect_map = {0: readability_prompt, 1: runtime_prompt, 2: security_prompt,\n"
        "                  3: functional_prompt, 4: memory_prompt}\n"
        "    u = random.random()\n"
        "    if u < no_criteria_cumulative_probability:\n"
        '        example["system"] = None\n'
        "    elif u < all_criteria_cumulative_probability:\n"
        '        example["system"] = f"{base_system_prompt}\\n\\n3. {aspect_map[example[\'aspect\']]}\\n\\n"\n'
        "    else:\n"
        "        criteria = list(aspect_map.values())\n"
        "        random.shuffle(criteria)\n"
        '        numbered = "\\n\\n".join(f"{i + 3}. {c}" for i, c in enumerate(criteria))\n'
        '        example["system"] = f"{base_system_prompt}\\n\\n{numbered}\\n\\n"\n'
        "    return example\n"
    )


@dataclass
class Sources:
    eval_source: str
    mapper_source: str
    marker: Path

    def pinned(self) -> tuple[PinnedFile, PinnedFile]:
        """The two pinned paths with the synthesized files' real digests."""
        return (
            PinnedFile(EVAL_SCRIPT.path, hashlib.sha256(self.eval_source.encode()).hexdigest()),
            PinnedFile(PROMPT_MAPPER.path, hashlib.sha256(self.mapper_source.encode()).hexdigest()),
        )


@pytest.fixture
def sources(layout, tmp_path) -> Sources:
    marker = tmp_path / "executed.txt"
    return Sources(
        _eval_script(layout["eval_prompts"], marker),
        _mapper_script(layout["train_components"], marker),
        marker,
    )


def test_extract_official_layout_equals_shared_json(sources, layout):
    extracted = extract_official_layout(sources.eval_source, sources.mapper_source)

    assert extracted["train_components"] == layout["train_components"]
    assert extracted["eval_prompts"] == layout["eval_prompts"]
    assert extracted["train_sampling"] == {
        key: value for key, value in layout["train_sampling"].items() if not key.startswith("_")
    }
    assert extracted["train_sampling"] == {"none": 0.15, "single_criterion": 0.6, "full_shuffled": 0.25}
    assert pack_from_layout(extracted, name="extracted").sha256 == pack_from_layout(layout, name="shared").sha256


def test_extract_official_layout_never_executes_the_sources(sources):
    assert 'raise SystemExit("executed!")' in sources.eval_source
    assert 'raise SystemExit("executed!")' in sources.mapper_source

    extract_official_layout(sources.eval_source, sources.mapper_source)

    assert not sources.marker.exists()


def test_extract_round_trips_braces_quotes_and_backslashes(layout, tmp_path):
    components = dict(layout["train_components"])
    tricky = 'Use {braces}, "quotes", \'apostrophes\', a back\\slash and """triple""" quotes.'
    components["Runtime_Efficiency"] = tricky
    mapper = _mapper_script(components, tmp_path / "executed.txt")
    eval_script = _eval_script(layout["eval_prompts"], tmp_path / "executed.txt")

    extracted = extract_official_layout(eval_script, mapper)

    assert extracted["train_components"]["Runtime_Efficiency"] == tricky


def test_extract_refuses_an_f_string_with_a_placeholder(sources):
    mapper = sources.mapper_source.replace("    runtime_prompt = f", "    runtime_prompt = f'{tokenizer}' + f", 1)

    with pytest.raises(PromptPackError, match=r"expected a constant string at line \d+, found BinOp"):
        extract_official_layout(sources.eval_source, mapper)

    mapper = re.sub(
        r"    runtime_prompt = f\"\"\".*?\"\"\"", "    runtime_prompt = f'{open(1)}'", sources.mapper_source, flags=re.S
    )
    with pytest.raises(PromptPackError, match=r"expected a constant string at line \d+, found JoinedStr"):
        extract_official_layout(sources.eval_source, mapper)
    assert not sources.marker.exists()


def test_extract_refuses_sources_without_the_map_or_function(sources):
    without_map = sources.eval_source.replace("SYSTEM_PROMPT_MAP = {", "OTHER_MAP = {")
    without_function = sources.mapper_source.replace("def system_prompt_map(", "def other_map(")

    for eval_source, mapper_source in ((without_map, sources.mapper_source), (sources.eval_source, without_function)):
        with pytest.raises(PromptPackError, match=r"lack SYSTEM_PROMPT_MAP or system_prompt_map\(\)"):
            extract_official_layout(eval_source, mapper_source)


def test_extract_refuses_a_map_that_is_not_a_literal(sources):
    eval_source = sources.eval_source.replace("SYSTEM_PROMPT_MAP = {", "SYSTEM_PROMPT_MAP = dict(x=1) or {", 1)

    with pytest.raises(PromptPackError, match=r"SYSTEM_PROMPT_MAP \(line \d+\) is not a literal"):
        extract_official_layout(eval_source, sources.mapper_source)


def test_extract_refuses_unparseable_source(sources):
    with pytest.raises(PromptPackError, match=re.escape(f"{PROMPT_MAPPER.path}: cannot parse the source")):
        extract_official_layout(sources.eval_source, "def system_prompt_map(:\n")


def test_extract_refuses_mapper_without_probability_defaults(sources):
    mapper = sources.mapper_source.replace("no_criteria_cumulative_probability=0.15, ", "", 1)
    mapper = mapper.replace("if u < no_criteria_cumulative_probability", "if u < 0.15")

    with pytest.raises(PromptPackError, match="no default for 'no_criteria_cumulative_probability'"):
        extract_official_layout(sources.eval_source, mapper)


# ---------------------------------------------------------------------- fetch over a real local server
@dataclass
class Site:
    base_url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def site(sources, tmp_path) -> Iterator[Site]:
    """``http.server`` on 127.0.0.1 serving the synthesized files under the pinned paths."""
    root = tmp_path / "site"
    for pinned, text in ((EVAL_SCRIPT, sources.eval_source), (PROMPT_MAPPER, sources.mapper_source)):
        (root / pinned.path).parent.mkdir(parents=True, exist_ok=True)
        (root / pinned.path).write_bytes(text.encode())
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format, *args) -> None:  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}/", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _cached_files(cache: Path) -> list[Path]:
    return [path for path in cache.rglob("*") if path.is_file()] if cache.exists() else []


def test_fetch_refuses_a_file_whose_sha256_differs_from_the_pinned_one(site, sources, _private_cache):
    actual = hashlib.sha256(sources.eval_source.encode()).hexdigest()

    with pytest.raises(PromptPackError, match="sha256") as caught:
        fetch_official_pack(base_url=site.base_url)

    message = str(caught.value)
    assert f"sha256 {actual} does not match the pinned {EVAL_SCRIPT.sha256}" in message
    assert EVAL_SCRIPT.path in message
    assert "refusing" in message
    assert site.requests == [f"/{EVAL_SCRIPT.path}"]
    assert not official_cache_path().exists()
    assert _cached_files(_private_cache) == []
    assert not sources.marker.exists()


def test_fetch_with_matching_digests_caches_a_pack_usable_offline(monkeypatch, site, sources, layout, layout_pack):
    eval_pin, mapper_pin = sources.pinned()
    monkeypatch.setattr(packs, "EVAL_SCRIPT", eval_pin)
    monkeypatch.setattr(packs, "PROMPT_MAPPER", mapper_pin)

    cached = fetch_official_pack(base_url=site.base_url)

    assert site.requests == [f"/{EVAL_SCRIPT.path}", f"/{PROMPT_MAPPER.path}"]
    assert cached == official_cache_path()
    assert [path.name for path in cached.parent.iterdir()] == [cached.name]  # no temporary file left
    stored = json.loads(cached.read_text(encoding="utf-8"))
    assert stored["train_components"] == layout["train_components"]
    assert stored["eval_prompts"] == layout["eval_prompts"]
    assert not sources.marker.exists()

    pack = load_prompt_pack("official")  # THEMIS_OFFLINE=1: must come from the cache

    assert pack.name == OFFICIAL_NAME
    assert _same_prompts(pack, layout_pack)
    assert pack.sha256 == layout_pack.sha256
    for key in (FULL, *CRITERIA):
        assert pack.eval_prompt(pack.resolve(key)) == layout["eval_prompts"][key]
    assert len(site.requests) == 2


def test_official_pack_is_fetched_on_demand_when_the_network_is_allowed(monkeypatch, site, sources, layout_pack):
    eval_pin, mapper_pin = sources.pinned()
    monkeypatch.setattr(packs, "EVAL_SCRIPT", eval_pin)
    monkeypatch.setattr(packs, "PROMPT_MAPPER", mapper_pin)
    monkeypatch.setenv("THEMIS_PROMPTS_BASE_URL", site.base_url)

    pack = load_prompt_pack("official", allow_network=True)

    assert pack.sha256 == layout_pack.sha256
    assert official_cache_path().is_file()
    assert len(site.requests) == 2


def test_fetch_of_a_missing_file_says_how_to_get_a_pack(site, _private_cache):
    base_url = site.base_url + "missing/"

    with pytest.raises(PromptPackError) as caught:
        fetch_official_pack(base_url=base_url, timeout_s=5)

    message = str(caught.value)
    assert f"fetching {base_url}{EVAL_SCRIPT.path} failed: HTTP Error 404" in message
    assert "themis criteria --fetch" in message
    assert "THEMIS_PROMPTS" in message
    assert _cached_files(_private_cache) == []


def test_fetch_refuses_a_tampered_mapper_even_when_the_eval_script_verifies(monkeypatch, site, sources):
    eval_pin, _ = sources.pinned()
    monkeypatch.setattr(packs, "EVAL_SCRIPT", eval_pin)

    with pytest.raises(PromptPackError, match=f"{re.escape(PROMPT_MAPPER.path)}: sha256 [0-9a-f]{{64}} does not"):
        fetch_official_pack(base_url=site.base_url)

    assert not official_cache_path().exists()
