"""Where prompt packs come from: the official Themis strings (fetched, verified, cached), a local file, or ours.

The official strings are not part of this repository. They are read from the authors' public repository at a
pinned commit, checked against pinned sha256 digests, extracted with :mod:`ast` (never executed) and cached under
``~/.cache/themis-rm``. Resolution order for :func:`load_prompt_pack`: the explicit spec, then ``THEMIS_PROMPTS``,
then the official pack (cache first, network second).
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from themis_rm.criteria import (
    FUNCTIONAL_CORRECTNESS,
    MEMORY_EFFICIENCY,
    READABILITY_MAINTAINABILITY,
    RUNTIME_EFFICIENCY,
    SECURITY_HARDNESS,
    PromptPack,
    load_pack_json,
    load_pack_toml,
    pack_from_layout,
)
from themis_rm.errors import PromptPackError

logger = logging.getLogger(__name__)

OFFICIAL_REPO = "iNeil77/Themis"
OFFICIAL_COMMIT = "ddd7934826a2cae320e45955d401c65176df8cb6"
OFFICIAL_NAME = f"themis-official@{OFFICIAL_COMMIT[:7]}"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{OFFICIAL_REPO}/{OFFICIAL_COMMIT}/"


@dataclass(frozen=True)
class PinnedFile:
    path: str
    sha256: str


EVAL_SCRIPT = PinnedFile(
    "Evaluation/Evaluation_Scripts/coderewardbench-seqcls.py",
    "dbe3cb6ecc3a21660d244f96a5a107b3da01a8fe59e3794b1c6c06354b930be9",
)
PROMPT_MAPPER = PinnedFile(
    "Dataset/Prompts/system_prompt_mapper.py",
    "5617db7b2274f975a51234e3eb9d2343384ec987fbfc6bc34a18c12023eb14df",
)
# Variable names of the training-time texts inside the mapper's function, and the criterion each one holds.
_MAPPER_VARIABLES = {
    "base_system_prompt": "base",
    "readability_prompt": READABILITY_MAINTAINABILITY,
    "runtime_prompt": RUNTIME_EFFICIENCY,
    "memory_prompt": MEMORY_EFFICIENCY,
    "security_prompt": SECURITY_HARDNESS,
    "functional_prompt": FUNCTIONAL_CORRECTNESS,
}


def cache_dir() -> Path:
    """``$THEMIS_CACHE``, else ``$XDG_CACHE_HOME/themis-rm``, else ``~/.cache/themis-rm``."""
    if os.environ.get("THEMIS_CACHE"):
        return Path(os.environ["THEMIS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "themis-rm"


def official_cache_path() -> Path:
    return cache_dir() / "prompts" / f"themis-official-{OFFICIAL_COMMIT[:12]}.json"


def load_prompt_pack(spec: str | os.PathLike | None = None, *, allow_network: bool | None = None) -> PromptPack:
    """Resolve a prompt pack.

    Args:
        spec: ``"official"``, ``"open"`` (our bundled wording), a path to a JSON file in the layout of
            ``themis_system_prompts.json``, or a complete pack in TOML. None reads ``THEMIS_PROMPTS``, then
            falls back to ``"official"``.
        allow_network: fetch the official pack when it is not cached; default: unless ``HF_HUB_OFFLINE`` or
            ``THEMIS_OFFLINE`` is set.

    Raises:
        PromptPackError: the pack cannot be found, fetched or verified; the message says how to get one.
    """
    spec = spec if spec is not None else os.environ.get("THEMIS_PROMPTS") or "official"
    spec_str = os.fspath(spec)
    if spec_str == "open":
        with resources.as_file(resources.files("themis_rm.resources") / "open_criteria.toml") as path:
            return load_pack_toml(path, name="open")
    if spec_str == "official":
        return load_official_pack(allow_network=allow_network)
    path = Path(spec_str)
    if not path.is_file():
        raise PromptPackError(
            f"prompt pack {spec_str!r} is not 'official', 'open' or an existing file (--prompt-pack / THEMIS_PROMPTS)"
        )
    return load_pack_toml(path) if path.suffix == ".toml" else load_pack_json(path)


def resolve_pack(spec: str | os.PathLike | None, criteria_file: str | os.PathLike | None = None) -> PromptPack:
    """:func:`load_prompt_pack`, extended with the user-defined criteria of ``criteria_file`` when given."""
    pack = load_prompt_pack(spec)
    return pack.with_user_criteria(criteria_file) if criteria_file else pack


def load_official_pack(*, allow_network: bool | None = None) -> PromptPack:
    """The official Themis pack from the cache, fetching and verifying it first when needed."""
    cached = official_cache_path()
    if not cached.is_file():
        if allow_network is None:
            allow_network = not (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("THEMIS_OFFLINE"))
        if not allow_network:
            raise PromptPackError(_missing_pack_message(cached, "the network is off (HF_HUB_OFFLINE/THEMIS_OFFLINE)"))
        fetch_official_pack()
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PromptPackError(
            f"{cached}: the cached official prompt pack cannot be read ({exc}); delete it and run "
            "`themis criteria --fetch` again"
        ) from exc
    return pack_from_layout(data, name=OFFICIAL_NAME)


def fetch_official_pack(base_url: str | None = None, timeout_s: float = 20.0) -> Path:
    """Download the two pinned source files, verify their sha256, extract the pack and cache it as JSON."""
    base_url = base_url or os.environ.get("THEMIS_PROMPTS_BASE_URL") or DEFAULT_BASE_URL
    sources = {pinned.path: _download_verified(base_url, pinned, timeout_s) for pinned in (EVAL_SCRIPT, PROMPT_MAPPER)}
    layout = extract_official_layout(sources[EVAL_SCRIPT.path], sources[PROMPT_MAPPER.path])
    pack_from_layout(layout, name=OFFICIAL_NAME)  # verify before caching
    target = official_cache_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(layout, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(target)
    logger.info("cached the official Themis prompt pack at %s", target)
    return target


def _download_verified(base_url: str, pinned: PinnedFile, timeout_s: float) -> str:
    url = base_url.rstrip("/") + "/" + pinned.path
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise PromptPackError(_missing_pack_message(official_cache_path(), f"fetching {url} failed: {exc}")) from exc
    digest = hashlib.sha256(body).hexdigest()
    if digest != pinned.sha256:
        raise PromptPackError(f"{url}: sha256 {digest} does not match the pinned {pinned.sha256}; refusing to use it")
    return body.decode("utf-8")


def extract_official_layout(eval_source: str, mapper_source: str) -> dict:
    """Pull the prompt strings out of the two source files without executing them.

    ``SYSTEM_PROMPT_MAP`` is a module-level dict literal (read with :func:`ast.literal_eval`); the training texts
    are placeholder-free f-strings assigned inside ``system_prompt_map`` whose keyword defaults give the
    cumulative sampling probabilities.
    """
    eval_prompts = None
    for node in _parse_source(eval_source, EVAL_SCRIPT.path).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SYSTEM_PROMPT_MAP" for t in node.targets):
            eval_prompts = _literal(node.value, "SYSTEM_PROMPT_MAP")
    mapper_body = _parse_source(mapper_source, PROMPT_MAPPER.path).body
    function = next((n for n in mapper_body if isinstance(n, ast.FunctionDef) and n.name == "system_prompt_map"), None)
    if eval_prompts is None or function is None:
        raise PromptPackError("the pinned sources lack SYSTEM_PROMPT_MAP or system_prompt_map()")
    components = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in _MAPPER_VARIABLES:
            components[_MAPPER_VARIABLES[node.targets[0].id]] = _constant_string(node.value)
    positional = function.args.args[len(function.args.args) - len(function.args.defaults) :]
    defaults = {a.arg: _literal(d, a.arg) for a, d in zip(positional, function.args.defaults, strict=True)}
    try:
        p_none = defaults["no_criteria_cumulative_probability"]
        p_all = defaults["all_criteria_cumulative_probability"]
    except KeyError as exc:
        raise PromptPackError(f"system_prompt_map() has no default for {exc}") from exc
    return {
        "_source": f"{OFFICIAL_REPO}@{OFFICIAL_COMMIT}: {EVAL_SCRIPT.path}, {PROMPT_MAPPER.path}",
        "train_components": components,
        "train_sampling": {
            "none": p_none,
            "single_criterion": round(p_all - p_none, 10),
            "full_shuffled": round(1 - p_all, 10),
        },
        "eval_prompts": eval_prompts,
    }


def _parse_source(source: str, label: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise PromptPackError(f"{label}: cannot parse the source ({exc})") from exc


def _literal(node: ast.expr, label: str) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise PromptPackError(f"{label} (line {node.lineno}) is not a literal ({exc})") from exc


def _constant_string(node: ast.expr) -> str:
    """The text of a plain string or an f-string without placeholders; anything else is refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(v.value for v in node.values)  # type: ignore[attr-defined]
    raise PromptPackError(f"expected a constant string at line {node.lineno}, found {type(node).__name__}")


def _missing_pack_message(cached: Path, reason: str) -> str:
    return (
        f"the official Themis prompt pack is not cached at {cached} and cannot be fetched: {reason}. "
        f"Either run `themis criteria --fetch` once on a machine with internet access (and copy {cached.name} "
        f"to {cached.parent}), pass --prompt-pack FILE / set THEMIS_PROMPTS to a JSON in the layout of "
        "themis_system_prompts.json, or use --prompt-pack open for themis-rm's own (non-official) wording."
    )
