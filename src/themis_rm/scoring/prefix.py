"""Shared-prefix scoring: compute each shared prefix once, score every continuation from its KV cache.

In CodeRewardBench every sequence is ``[criterion system prompt][task prompt][response]``: the system block is
identical across a whole aspect and the task prompt is shared by chosen and rejected (or by N candidates). The
renderer exposes both split points (``system_len``, ``prefix_len``), so requests form a two-level tree:

    system block ──▶ prompt block (+ the common head of its responses) ──▶ rest of each response (scored)

Each level runs once per unique block, right-padded in token-budget batches; the next level continues from the
selected rows of its KV cache with explicit ``position_ids`` (each row continues at its own prefix length) and an
attention mask whose zeros hide the padding holes. The final level runs the sequence-classification model itself,
whose pooling picks each row's last real token. Scores equal the plain full forward up to float rounding (tested
at 1e-4 in fp32). Works through the HF cache API for any decoder that accepts a cache (``cache`` from
transformers 5.24, ``past_key_values`` before) and ``position_ids`` (Qwen3, Llama, ...).

System blocks are few (one per criteria selection) and long (400-1,100 tokens for the Themis prompts), so their
cache states are also kept across calls in a small LRU (``system_cache_size``): a server answering one request at
a time, or a bench run scoring chunk after chunk, computes each criterion prompt once per process, not per call.
The kept states are never written to (every level continues from a row selection, a new cache), so reuse is exact.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from themis_rm.render import RenderedSequence
from themis_rm.scoring.engine import EngineStats, plan_padded_groups

_MIN_SHARED_HEAD = 8  # tokens


@dataclass
class _Node:
    """One unique block at one level: its tokens, the parent row it continues, and its row once computed."""

    tokens: tuple[int, ...]
    parent: int  # index of the parent node in the previous level (-1: no parent)


def reuse_ratio(sequences: Sequence[RenderedSequence], systems_amortized: bool = False) -> float:
    """Tokens the prefix tree computes / tokens a full forward computes (lower is better).

    ``systems_amortized``: system blocks are kept across calls, so each costs one computation per process, not per
    call; they are then left out of this call's cost.
    """
    naive = sum(len(s.input_ids) for s in sequences)
    if not naive:
        return 1.0
    systems, prompts, leaves = _build_tree(sequences)
    computed = 0 if systems_amortized else sum(len(node.tokens) for node in systems)
    computed += sum(len(node.tokens) for node in prompts) + sum(len(response) for _, response in leaves)
    return computed / naive


class PrefixScoringEngine:
    """Scores rendered sequences through a two-level shared-prefix tree (see module docstring).

    Args:
        model: a ``*ForSequenceClassification`` decoder; ``model.base_model`` must accept a KV cache.
        pad_token_id: id used for right padding.
        batch_tokens: padded tokens per forward pass at each level (cache tokens of selected rows included).
        system_cache_size: system-block cache states kept across calls (0: none). The model must not change
            while they are kept (scoring only; the trainer never builds this engine).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        pad_token_id: int,
        batch_tokens: int = 16384,
        stats: EngineStats | None = None,
        system_cache_size: int = 16,
    ) -> None:
        self.model = model
        self.pad_token_id = pad_token_id
        self.batch_tokens = batch_tokens
        self.device = next(model.parameters()).device
        self.stats = stats or EngineStats()
        self.system_cache_size = system_cache_size
        self._system_states: OrderedDict[tuple[int, ...], _State] = OrderedDict()
        self._cache_kwarg = _cache_kwarg(model.base_model)

    @torch.inference_mode()
    def score(self, sequences: Sequence[RenderedSequence], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Rewards (float64, input order), one per sequence."""
        started = time.perf_counter()
        rewards = np.empty(len(sequences), dtype=np.float64)
        systems, prompts, leaves = _build_tree(sequences)
        by_system: dict[int, list[int]] = {}
        for prompt_index, node in enumerate(prompts):
            by_system.setdefault(node.parent, []).append(prompt_index)
        leaves_by_prompt: dict[int, list[int]] = {}
        for seq_index, (prompt_index, _) in enumerate(leaves):
            leaves_by_prompt.setdefault(prompt_index, []).append(seq_index)
        for system_index, prompt_indices in by_system.items():
            system_tokens = systems[system_index].tokens
            # An empty system block means no past at all: a fully masked query row would poison the cache.
            system_state = self._system_state(system_tokens) if system_tokens else None
            for chunk in self._chunks(prompt_indices, prompts, len(system_tokens)):
                prompt_state = self._extend(system_state, [prompts[p].tokens for p in chunk], [0] * len(chunk))
                row_of = {p: row for row, p in enumerate(chunk)}
                members = [s for p in chunk for s in leaves_by_prompt[p]]
                cache_width = prompt_state.mask.shape[1]
                for batch in self._leaf_batches(members, leaves, cache_width):
                    rows = [row_of[leaves[s][0]] for s in batch]
                    rewards[batch] = self._score_leaves(prompt_state, [leaves[s][1] for s in batch], rows)
                    if progress is not None:
                        progress(len(batch))
        self.stats.sequences += len(sequences)
        self.stats.seconds += time.perf_counter() - started
        return rewards

    def _chunks(self, prompt_indices: list[int], prompts: list[_Node], system_tokens: int) -> list[list[int]]:
        """Prompts of one system block in chunks of similar length whose prompt level fits the token budget."""
        groups = plan_padded_groups([len(prompts[p].tokens) for p in prompt_indices], self.batch_tokens, system_tokens)
        return [[prompt_indices[i] for i in group] for group in groups]

    def _leaf_batches(self, members: list[int], leaves, cache_width: int) -> list[list[int]]:
        """Responses of one chunk in batches of similar length; every row also holds the chunk's cache."""
        groups = plan_padded_groups([len(leaves[s][1]) for s in members], self.batch_tokens, cache_width)
        return [[members[i] for i in group] for group in groups]

    def reuse_ratio(self, sequences: Sequence[RenderedSequence]) -> float:
        """:func:`reuse_ratio` of ``sequences``; with the LRU on, system blocks are amortized over calls."""
        return reuse_ratio(sequences, systems_amortized=self.system_cache_size > 0)

    def clear_cache(self) -> None:
        """Forget the kept system-block states (benchmarks call it between timed runs)."""
        self._system_states.clear()

    # ------------------------------------------------------------------------------------------------ levels
    def _system_state(self, tokens: tuple[int, ...]) -> _State:
        """The system block's cache state: from the LRU when kept, else computed (and kept)."""
        state = self._system_states.get(tokens)
        if state is not None:
            self._system_states.move_to_end(tokens)
            self.stats.cached_tokens += len(tokens)
            return state
        state = self._extend(None, [tokens], [0])
        if self.system_cache_size > 0:
            self._system_states[tokens] = state
            while len(self._system_states) > self.system_cache_size:
                self._system_states.popitem(last=False)
        return state

    def _extend(self, state: _State | None, blocks: Sequence[tuple[int, ...]], rows: Sequence[int]) -> _State:
        """Run ``blocks`` (one per row, continuing ``state``'s rows ``rows``) and return the grown cache state."""
        input_ids, block_mask = self._pad(blocks)
        if state is None:
            past, past_mask, past_len = None, None, torch.zeros(len(blocks), dtype=torch.long, device=self.device)
        else:
            index = torch.as_tensor(rows, device=self.device)
            past = _select(state.cache, index)
            past_mask, past_len = state.mask[index], state.lengths[index]
        mask = block_mask if past_mask is None else torch.cat([past_mask, block_mask], dim=1)
        positions = past_len[:, None] + torch.arange(input_ids.shape[1], device=self.device)[None, :]
        out = self.model.base_model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kwarg: past if past is not None else DynamicCache()},
        )
        self._count(block_mask, mask)
        grown = out.cache if self._cache_kwarg == "cache" else out.past_key_values
        return _State(grown, mask, past_len + block_mask.sum(dim=1))

    def _score_leaves(self, state: _State, blocks: Sequence[tuple[int, ...]], rows: Sequence[int]) -> np.ndarray:
        input_ids, block_mask = self._pad(blocks)
        index = torch.as_tensor(rows, device=self.device)
        past = _select(state.cache, index)
        mask = torch.cat([state.mask[index], block_mask], dim=1)
        positions = state.lengths[index][:, None] + torch.arange(input_ids.shape[1], device=self.device)[None, :]
        logits = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kwarg: past},
        ).logits
        self._count(block_mask, mask)
        return logits[:, 0].float().cpu().numpy()

    def _pad(self, blocks: Sequence[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(1, max(len(b) for b in blocks))
        input_ids = torch.full((len(blocks), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(blocks), width), dtype=torch.long)
        for row, block in enumerate(blocks):
            input_ids[row, : len(block)] = torch.as_tensor(block, dtype=torch.long)
            mask[row, : len(block)] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _count(self, block_mask: torch.Tensor, mask: torch.Tensor) -> None:
        self.stats.batches += 1
        self.stats.tokens += int(block_mask.sum())
        self.stats.padded_tokens += block_mask.numel()


@dataclass
class _State:
    cache: DynamicCache
    mask: torch.Tensor  # (rows, cached tokens): 1 for real tokens, 0 for padding holes
    lengths: torch.Tensor  # (rows,): real tokens cached per row = the next position id


def _cache_kwarg(base_model: torch.nn.Module) -> str:
    """The forward's cache argument: ``cache`` (transformers >= 5.24) or ``past_key_values`` (before)."""
    return "cache" if "cache" in inspect.signature(base_model.forward).parameters else "past_key_values"


def _select(cache: DynamicCache, index: torch.Tensor) -> DynamicCache:
    """A new cache holding rows ``index`` (repeats allowed) of ``cache``; the original is left untouched."""
    selected = DynamicCache()
    for layer_index, layer in enumerate(cache.layers):
        selected.update(layer.keys[index], layer.values[index], layer_index)
    return selected


def _build_tree(sequences: Sequence[RenderedSequence]):
    """Unique system blocks, prompt blocks, and each sequence's (prompt node, response tokens still to score).

    Responses under one prompt often start alike: chosen and rejected of a commit pair differ in a few lines, and
    raw strings (``/classify``, ``/get_reward`` as sent, with no split points) that are N rollouts of one RL prompt
    share that whole prompt. Such responses are clustered by common token prefix (:func:`_clusters`) and each
    cluster's common head joins its prompt block, so it is computed once too. Token ids are identical up to there,
    so this is as exact as the other levels.
    """
    systems: list[_Node] = []
    system_index: dict[tuple[int, ...], int] = {}
    groups: dict[tuple[int, tuple[int, ...]], list[tuple[int, tuple[int, ...]]]] = {}
    for seq_index, seq in enumerate(sequences):
        ids = seq.input_ids
        prefix_len = min(seq.prefix_len, len(ids) - 1)  # every leaf keeps >= 1 token: the one the reward is read at
        system_len = min(seq.system_len, prefix_len)
        system = tuple(ids[:system_len])
        if system not in system_index:
            system_index[system] = len(systems)
            systems.append(_Node(system, -1))
        key = (system_index[system], tuple(ids[system_len:prefix_len]))
        groups.setdefault(key, []).append((seq_index, tuple(ids[prefix_len:])))
    prompts: list[_Node] = []
    leaves: list[tuple[int, tuple[int, ...]]] = [(-1, ())] * len(sequences)
    for (s, prompt), members in groups.items():
        for cluster, head in _clusters([response for _, response in members]):
            head_tokens = members[cluster[0]][1][:head]
            prompts.append(_Node(prompt + head_tokens, s))
            for position in cluster:
                seq_index, response = members[position]
                leaves[seq_index] = (len(prompts) - 1, response[head:])
    return systems, prompts, leaves


def _clusters(responses: Sequence[tuple[int, ...]]) -> list[tuple[list[int], int]]:
    """Responses (by position) grouped by common token prefix, each group with its shared head length.

    Sorted, responses sharing a prefix are neighbours; a run of neighbours shares the smallest of their adjacent
    common prefixes and saves ``head × (n − 1)`` tokens. The runs that save the most in all are found exactly by
    dynamic programming over the sorted order (a run stops growing once its head drops below
    ``_MIN_SHARED_HEAD``). Heads leave every response at least one token (the one the reward is read at).
    Responses in no run come back together with head 0: they are scored straight from the prompt block.
    """
    order = sorted(range(len(responses)), key=lambda i: responses[i])
    adjacent = [_common_prefix(responses[a], responses[b]) for a, b in itertools.pairwise(order)]
    best = [0] * (len(order) + 1)  # best[j]: most tokens saved by runs over the first j sorted responses
    start = list(range(len(order) + 1))  # start[j]: where the run ending at j begins (j - 1: alone)
    for end in range(1, len(order) + 1):
        best[end], start[end] = best[end - 1], end - 1
        head = None
        for first in range(end - 2, -1, -1):  # run = sorted first..end-1
            head = adjacent[first] if head is None else min(head, adjacent[first])
            if head < _MIN_SHARED_HEAD:
                break
            saved = best[first] + head * (end - 1 - first)
            if saved > best[end]:
                best[end], start[end] = saved, first
    groups, loners, end = [], [], len(order)
    while end:
        first = start[end]
        run = order[first:end]
        if len(run) > 1:
            groups.append((run, min(adjacent[first : end - 1])))
        else:
            loners += run
        end = first
    return [*groups, (loners, 0)] if loners else groups


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Tokens ``a`` and ``b`` share at their start, leaving each at least one."""
    limit = min(len(a), len(b)) - 1
    shared = 0
    while shared < limit and a[shared] == b[shared]:
        shared += 1
    return shared
