"""Reward-model adapters: one registry loads checkpoints whose reward is read in different ways.

Every adapter returns a :class:`LoadedModel` whose ``model(input_ids=..., attention_mask=...)`` gives ``.logits`` of
shape ``(B, 1)`` for right-padded batches, so the engine, scorer, bench and server need no per-model copies (the
reference kept one 800-line script per model):

* ``seqcls``: any one-label ``AutoModelForSequenceClassification`` (:func:`load_reward_model`); the default.
* ``head``: a scalar head stored in the checkpoint's safetensors (``v_head.weight``, ``score.0/2.weight``) on an
  ``AutoModel`` backbone, read at each row's last real token or at the last occurrence of a named token
  (Athene's CLS read-out). Declared by a :class:`HeadSpec`.
* ``lm-logprob``: a causal LM's next-token scores at the answer position, ``log p(yes) - log p(no)`` or one
  token's raw logit (Nemotron-Reward reads token id 0), for one or several weighted attributes; judge-style LMs
  get a follow-up question appended first. Declared by a :class:`LogprobSpec` (:mod:`.logprob`).

    load_adapter("org/value-head-rm", "head", spec={"pooling": "last", "weights": ["v_head.weight"]})
    load_adapter("org/judge-lm", "lm-logprob", spec={"question": "Is the code above correct? Answer Yes or No."})

Out of scope: the head adapter appending text (Athene appends ``cls_token`` before reading its head), models that
need ``trust_remote_code`` (InternLM2) and several heads with gating (ArmoRM).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

import torch
from torch import nn

from themis_rm.errors import ThemisInputError
from themis_rm.scoring.logprob import LogprobRewardModel, LogprobSpec, resolve_readouts
from themis_rm.scoring.models import (
    LoadedModel,
    load_reward_model,
    load_tokenizer,
    resolve_attention,
    resolve_device,
    resolve_dtype,
    resolve_model_dir,
)
from themis_rm.scoring.readout import build_spec, pool_positions, raise_problems, read_spec, single_token_id

logger = logging.getLogger(__name__)

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


# ------------------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class HeadSpec:
    """How a scalar reward is read off an ``AutoModel`` backbone. One valid spec (as JSON)::

    {"pooling": {"token": "<|reserved_special_token_1|>"}, "head": "linear", "weights": ["v_head.weight"]}
    """

    pooling: str = "last"
    """``last``: each row's last real token (from the attention mask); ``token``: the row's last ``token``."""
    token: str | None = None
    """Token text to pool at when ``pooling="token"``; must tokenise to exactly one id."""
    token_id: int | None = None
    """Token id to pool at, instead of ``token``."""
    head: str = "linear"
    """``linear`` (one weight) or ``mlp`` (two or more layers, ``activation`` between them)."""
    weights: tuple[str, ...] = ("v_head.weight",)
    """Checkpoint tensor name of each layer's weight ``(out, in)``, first layer first; the last ``out`` is 1."""
    biases: tuple[str | None, ...] = ()
    """Tensor name of each layer's bias (``None``: no bias); empty: no layer has one."""
    activation: str = "relu"
    """Between MLP layers: relu, gelu, tanh or silu."""
    weights_file: str | None = None
    """Safetensors file, relative to the model dir, that holds the head; None searches every ``*.safetensors``."""

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "head spec") -> HeadSpec:
        """Build from JSON-like data; ``pooling`` may also be ``{"token": "<name>"}`` or ``{"token_id": N}``."""
        data = dict(data)
        pooling = data.get("pooling")
        if isinstance(pooling, Mapping):
            data.update(pooling)
            data["pooling"] = "token"
        elif pooling is None and ("token" in data or "token_id" in data):
            data["pooling"] = "token"
        for key in ("weights", "biases"):
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return build_spec(cls, data, source)

    def __post_init__(self) -> None:
        problems = []
        if self.pooling not in ("last", "token"):
            problems.append(f"pooling must be 'last', {{'token': ...}} or {{'token_id': ...}}, got {self.pooling!r}")
        if self.pooling == "token" and (self.token is None) == (self.token_id is None):
            problems.append("pooling 'token' needs exactly one of token or token_id")
        if self.head not in ("linear", "mlp"):
            problems.append(f"head must be 'linear' or 'mlp', got {self.head!r}")
        expected = "1" if self.head == "linear" else "2 or more"
        if (self.head == "linear") != (len(self.weights) == 1) or not self.weights:
            problems.append(f"head {self.head!r} needs {expected} weight names, got {list(self.weights)}")
        if self.biases and len(self.biases) != len(self.weights):
            problems.append(f"biases needs one entry per weight ({len(self.weights)}), got {list(self.biases)}")
        if self.activation not in _ACTIVATIONS:
            problems.append(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {self.activation!r}")
        raise_problems("head spec", problems)


# ------------------------------------------------------------------------------------------------- wrapper
class ScalarHeadRewardModel(nn.Module):
    """Backbone hidden states -> one pooled position per row -> scalar head computed in fp32.

    Args:
        backbone: an ``AutoModel`` returning ``last_hidden_state`` ``(B, T, H)``.
        head: maps ``(B, H)`` fp32 to ``(B, 1)``.
        pool_token_id: pool at this token's last occurrence; None pools at the last real token.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, pool_token_id: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.pool_token_id = pool_token_id
        self.config = backbone.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        """Returns ``logits`` ``(B, 1)`` float32."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        positions = pool_positions(attention_mask, input_ids, self.pool_token_id)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]
        return SimpleNamespace(logits=self.head(pooled.float()))


# ------------------------------------------------------------------------------------------------- loaders
@dataclass(frozen=True)
class ModelRequest:
    """What to load and where: the arguments every adapter shares (see :func:`load_reward_model`)."""

    model_id: str
    dtype: str = "auto"
    device: str = "auto"
    attn_implementation: str = "auto"
    revision: str | None = None


class AdapterLoader(Protocol):
    """Loads a model so that ``model(input_ids, attention_mask).logits`` is ``(B, 1)`` for right-padded batches."""

    def __call__(self, request: ModelRequest, spec: object | None = None) -> LoadedModel: ...


def load_seqcls_model(request: ModelRequest, spec: object | None = None) -> LoadedModel:
    """The default adapter: :func:`load_reward_model` (takes no spec)."""
    if spec is not None:
        raise ThemisInputError("--adapter seqcls takes no --adapter-spec (the checkpoint's own head is used)")
    return load_reward_model(
        request.model_id,
        dtype=request.dtype,
        device=request.device,
        attn_implementation=request.attn_implementation,
        revision=request.revision,
    )


def load_head_model(request: ModelRequest, spec: HeadSpec | Mapping | str | None = None) -> LoadedModel:
    """An ``AutoModel`` backbone plus the scalar head a :class:`HeadSpec` names in the checkpoint's safetensors."""
    from transformers import AutoModel

    head_spec = read_spec(spec, HeadSpec)
    target = _prepare(request)
    backbone = _checked_load(AutoModel, target)
    names = [*head_spec.weights, *(b for b in head_spec.biases if b)]
    head = build_head(head_spec, read_tensors(target.model_dir, names, head_spec.weights_file))
    hidden_size = getattr(backbone.config.get_text_config(), "hidden_size", None)
    if hidden_size is not None and head[0].in_features != hidden_size:
        raise ThemisInputError(
            f"{request.model_id}: head weight {head_spec.weights[0]!r} takes {head[0].in_features} inputs, "
            f"the backbone's hidden size is {hidden_size}"
        )
    token_id = head_spec.token_id
    if head_spec.token is not None:
        token_id = single_token_id(target.tokenizer, head_spec.token, "head spec token")
    return _finish(request, target, ScalarHeadRewardModel(backbone, head, token_id), "head", head_spec)


def load_logprob_model(request: ModelRequest, spec: LogprobSpec | Mapping | str | None = None) -> LoadedModel:
    """An ``AutoModelForCausalLM`` scored by the next-token log-probabilities a :class:`LogprobSpec` names."""
    from transformers import AutoModelForCausalLM

    lp_spec = read_spec(spec, LogprobSpec)
    target = _prepare(request)
    readouts = resolve_readouts(target.tokenizer, lp_spec)
    model = LogprobRewardModel(_checked_load(AutoModelForCausalLM, target), readouts)
    logger.info("lm-logprob attributes %s, appending up to %d tokens", model.attribute_names, model.reserved_tokens)
    return _finish(request, target, model, "lm-logprob", lp_spec, model.reserved_tokens)


ADAPTERS: dict[str, AdapterLoader] = {
    "seqcls": load_seqcls_model,
    "head": load_head_model,
    "lm-logprob": load_logprob_model,
}


def load_adapter(
    model_id: str,
    adapter: str = "seqcls",
    *,
    spec: HeadSpec | LogprobSpec | Mapping | str | os.PathLike | None = None,
    dtype: str = "auto",
    device: str = "auto",
    attn_implementation: str = "auto",
    revision: str | None = None,
) -> LoadedModel:
    """Load ``model_id`` (hub id or local dir) with the named adapter; ``spec`` configures ``head``/``lm-logprob``."""
    if adapter not in ADAPTERS:
        raise ThemisInputError(f"--adapter must be one of {', '.join(ADAPTERS)}; got {adapter!r}")
    return ADAPTERS[adapter](ModelRequest(model_id, dtype, device, attn_implementation, revision), spec)


# ------------------------------------------------------------------------------------------------- helpers
def build_head(spec: HeadSpec, tensors: Mapping[str, torch.Tensor]) -> nn.Sequential:
    """fp32 ``Linear`` layers from the named tensors, ``spec.activation`` between them; checks the shapes chain."""
    layers: list[nn.Module] = []
    biases = spec.biases or (None,) * len(spec.weights)
    for weight_name, bias_name in zip(spec.weights, biases, strict=True):
        weight = tensors[weight_name]
        if weight.ndim != 2:
            raise ThemisInputError(f"head weight {weight_name!r} must be 2-D (out, in), got {tuple(weight.shape)}")
        if layers and weight.shape[1] != layers[-2].out_features:
            raise ThemisInputError(
                f"head weight {weight_name!r} takes {weight.shape[1]} inputs, the previous layer gives "
                f"{layers[-2].out_features}"
            )
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias_name is not None, dtype=torch.float32)
        with torch.no_grad():
            linear.weight.copy_(weight.float())
            if bias_name is not None:
                linear.bias.copy_(tensors[bias_name].float().reshape(-1))
        layers += [linear, _ACTIVATIONS[spec.activation]()]
    if layers[-2].out_features != 1:
        raise ThemisInputError(
            f"head weight {spec.weights[-1]!r} gives {layers[-2].out_features} outputs; a reward head gives 1"
        )
    return nn.Sequential(*layers[:-1])


def read_tensors(model_dir: Path, names: list[str], weights_file: str | None = None) -> dict[str, torch.Tensor]:
    """The named tensors from ``weights_file`` (or every ``*.safetensors`` in ``model_dir``), read lazily.

    Raises:
        ThemisInputError: a file is missing or a tensor is in none of the files (names the nearest tensor names).
    """
    from safetensors import safe_open

    files = [model_dir / weights_file] if weights_file else sorted(model_dir.glob("*.safetensors"))
    if not files or not all(f.is_file() for f in files):
        wanted = weights_file or "*.safetensors"
        raise ThemisInputError(f"{model_dir}: no {wanted} to read the head from (head spec weights_file)")
    found: dict[str, torch.Tensor] = {}
    available: list[str] = []
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            keys = set(handle.keys())
            available += keys
            for name in set(names) & keys - found.keys():
                found[name] = handle.get_tensor(name)
    missing = [n for n in names if n not in found]
    if missing:
        near = list(dict.fromkeys(m for n in missing for m in difflib.get_close_matches(n, available, n=3)))
        raise ThemisInputError(
            f"head tensor(s) {missing} not found in {', '.join(str(f) for f in files)}; "
            f"fix weights/biases in the head spec (nearest names: {near or 'none'})"
        )
    return found


@dataclass(frozen=True)
class _Target:
    """A request resolved: local checkpoint dir, device, dtype, attention kernel and tokenizer."""

    model_dir: Path
    device: torch.device
    dtype: torch.dtype
    attention: str
    tokenizer: object


def _prepare(request: ModelRequest) -> _Target:
    model_dir = resolve_model_dir(request.model_id, request.revision)
    device = resolve_device(request.device)
    tokenizer = load_tokenizer(str(model_dir))
    dtype, attention = resolve_dtype(request.dtype, device), resolve_attention(request.attn_implementation, device)
    return _Target(model_dir, device, dtype, attention, tokenizer)


def _checked_load(auto_class, target: _Target) -> nn.Module:
    """``from_pretrained`` that refuses a checkpoint with weights missing (they would be silently random)."""
    model, info = auto_class.from_pretrained(
        target.model_dir, dtype=target.dtype, attn_implementation=target.attention, output_loading_info=True
    )
    if info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise ThemisInputError(
            f"{target.model_dir}: {len(missing)} {auto_class.__name__} weight(s) are not in the checkpoint, e.g. "
            f"{missing[:3]}; is this the right adapter for this checkpoint?"
        )
    model.config.use_cache = False
    return model


def _finish(
    request: ModelRequest, target: _Target, model: nn.Module, adapter: str, spec, reserved_tokens: int = 0
) -> LoadedModel:
    model = model.to(target.device).eval()
    logger.info(
        "loaded %s (%s) on %s (%s, %s)", request.model_id, adapter, target.device, target.dtype, target.attention
    )
    return LoadedModel(
        model,
        target.tokenizer,
        target.device,
        target.dtype,
        target.attention,
        request.model_id,
        request.revision,
        adapter=adapter,
        adapter_spec=dataclasses.asdict(spec),
        reserved_tokens=reserved_tokens,
    )
