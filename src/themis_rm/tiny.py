"""Tiny, offline reward models for the demo, tests and benchmarks (no hub access needed).

A small byte-level BPE is trained in about a second on the Python standard library's own sources and wrapped
with Qwen3's special tokens and a Qwen3-style chat template (or Llama-3-style, whose template emits BOS). The
model is a randomly initialised ``Qwen3ForSequenceClassification`` (or Llama) with one label, saved with
``save_pretrained`` so everything downstream loads it exactly as it would a hub checkpoint.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

QWEN3_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN3_ADDED_TOKENS = ("<think>", "</think>")
# Qwen3-style: the final assistant turn gets the empty think block and loses leading newlines, as in Qwen3.
QWEN3_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content.lstrip('\\n') + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _qwen3_shape(hidden_size: int, num_layers: int, num_attention_heads: int, intermediate_size: int) -> dict:
    """:func:`tiny_config` keywords for one Qwen3 size; every released dense size has 8 KV heads of dim 128."""
    heads = dict(num_attention_heads=num_attention_heads, num_key_value_heads=8, head_dim=128)
    return dict(hidden_size=hidden_size, num_layers=num_layers, **heads, intermediate_size=intermediate_size)


# Layer shapes of released Qwen3 models (config.json of Qwen/Qwen3-0.6B and Qwen/Qwen3-8B), for random-initialised
# benchmark models: compute per token is set by these, not by the vocabulary.
QWEN3_SHAPES = {
    "qwen3-0.6b": _qwen3_shape(hidden_size=1024, num_layers=28, num_attention_heads=16, intermediate_size=3072),
    "qwen3-8b": _qwen3_shape(hidden_size=4096, num_layers=36, num_attention_heads=32, intermediate_size=12288),
}
LLAMA_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|finetune_right_pad_id|>",
)
# Llama-3-style: the template itself emits BOS, and the tokenizer also adds BOS by default (the double-BOS trap).
LLAMA_STYLE_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def _training_corpus(max_files: int = 40) -> list[str]:
    """Deterministic corpus: the first ``max_files`` stdlib modules by name."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[:max_files]
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


def build_tokenizer(style: str = "qwen3", vocab_size: int = 4096):
    """A fast tokenizer with a Qwen3-style (``qwen3``) or BOS-emitting Llama-3-style (``llama``) template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = QWEN3_SPECIAL_TOKENS if style == "qwen3" else LLAMA_SPECIAL_TOKENS
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_training_corpus(), trainer=trainer)
    if style == "qwen3":
        tokenizer.add_tokens(list(QWEN3_ADDED_TOKENS))
        return PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            chat_template=QWEN3_STYLE_TEMPLATE,
            model_max_length=32768,
        )
    if style == "llama":
        bos = "<|begin_of_text|>"
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            bos_token=bos,
            eos_token="<|eot_id|>",
            pad_token="<|finetune_right_pad_id|>",
            chat_template=LLAMA_STYLE_TEMPLATE,
            model_max_length=32768,
        )
    raise ValueError(f"style must be 'qwen3' or 'llama', got {style!r}")


def tiny_config(
    tokenizer,
    *,
    style: str = "qwen3",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    head_dim: int | None = None,
    tie_word_embeddings: bool = False,
    **extra,
):
    """A small Qwen3 (or Llama) config sized for ``tokenizer``; ``extra`` goes to the config (e.g. ``num_labels``).

    ``**QWEN3_SHAPES[name]`` gives a real model's layer shapes (with the small vocabulary) for GPU benchmarks.
    """
    from transformers import LlamaConfig, Qwen3Config

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 3 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        head_dim=head_dim or hidden_size // num_attention_heads,
        max_position_embeddings=32768,
        tie_word_embeddings=tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=False,
        **extra,
    )
    if style == "qwen3":
        return Qwen3Config(**common)
    if style == "llama":
        return LlamaConfig(bos_token_id=tokenizer.bos_token_id, **common)
    raise ValueError(f"style must be 'qwen3' or 'llama', got {style!r}")


def build_tiny_reward_model(
    output_dir: str | Path,
    *,
    style: str = "qwen3",
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    tokenizer=None,
) -> Path:
    """Save a random one-label reward model plus its tokenizer to ``output_dir`` and return the path."""
    import torch
    from transformers import LlamaForSequenceClassification, Qwen3ForSequenceClassification

    output_dir = Path(output_dir)
    tokenizer = tokenizer or build_tokenizer(style)
    config = tiny_config(tokenizer, style=style, hidden_size=hidden_size, num_layers=num_layers, num_labels=1)
    torch.manual_seed(seed)
    model_class = Qwen3ForSequenceClassification if style == "qwen3" else LlamaForSequenceClassification
    model = model_class(config)
    with torch.no_grad():  # random init gives near-identical rewards; widen the head so scores spread visibly
        model.score.weight.normal_(0.0, 1.0)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def build_tiny_causal_lm(
    output_dir: str | Path,
    *,
    tokenizer=None,
    seed: int = 0,
    **shape,
) -> Path:
    """Save a random ``Qwen3ForCausalLM`` plus tokenizer: a base model ``themis train`` starts from, as from a real
    one (zero-initialised reward head, an LM head for the LM loss). ``shape`` goes to :func:`tiny_config`."""
    import torch
    from transformers import Qwen3ForCausalLM

    output_dir = Path(output_dir)
    tokenizer = tokenizer or build_tokenizer("qwen3")
    config = tiny_config(tokenizer, eos_token_id=tokenizer.eos_token_id, **shape)
    torch.manual_seed(seed)
    Qwen3ForCausalLM(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def open_pack_layout() -> dict:
    """The bundled ``open`` pack in the layout of ``themis_system_prompts.json`` (train components, sampling and
    the rendered eval prompts): a stand-in for the official file wherever a test checks mechanics, not wording.
    """
    from themis_rm.criteria import CRITERIA, FULL
    from themis_rm.packs import load_prompt_pack

    pack = load_prompt_pack("open")
    return {
        "_source": "themis-rm open pack (bundled wording, not the official strings)",
        "train_components": {"base": pack.base, **{key: pack.components[key] for key in CRITERIA}},
        "train_sampling": {"none": pack.sampling.none, "single_criterion": pack.sampling.single,
                           "full_shuffled": pack.sampling.full},
        "eval_prompts": {key: pack.eval_prompt(pack.resolve(key)) for key in (FULL, *CRITERIA)},
    }  # fmt: skip


SYNTHETIC_SUBSETS = ("humanevalpack", "mdeval", "commitmined")


def synthetic_pair_rows(n: int) -> list[dict]:
    """``n`` distinct pair rows built from the bundled demo pairs, for bench and pipeline tests without shared/.

    Row ``i`` takes demo pair ``i % 10``'s code and language, a prompt that names ``i`` (so no two rows score
    alike), an aspect that rotates with the row and with each pass over the ten (every language meets
    several criteria) and one of
    three subsets. One row::

        {"id": "SYN007_DEMO_SH_RUBY", "prompt": "... (case 7)", "chosen": "...", "rejected": "...",
         "aspect": "Security_Hardness", "language": "Ruby", "subset": "humanevalpack"}
    """
    from themis_rm.criteria import CRITERIA
    from themis_rm.resources import demo_pairs

    templates = demo_pairs()
    rows = []
    for i in range(n):
        pair = templates[i % len(templates)]
        rows.append(
            {
                "id": f"SYN{i:03d}_{pair.id}",
                "prompt": f"{pair.prompt} (case {i})",
                "chosen": pair.chosen,
                "rejected": pair.rejected,
                "aspect": CRITERIA[(2 * i + i // len(templates)) % len(CRITERIA)],
                "language": pair.language,
                "subset": SYNTHETIC_SUBSETS[i % len(SYNTHETIC_SUBSETS)],
            }
        )
    return rows


def write_pairs_jsonl(path: str | Path, rows: list[dict]) -> Path:
    """Write ``rows`` as JSON lines (one pair per line, as ``themis bench --data`` reads them)."""
    import json

    path = Path(path)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
