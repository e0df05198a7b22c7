"""Exact and near-duplicate removal, as three datatrove steps around one shared :class:`MinHashConfig`.

1. :class:`DedupSignatures` (every task): an exact key (sha256 of old and new contents) and a datasketch MinHash of
   each record, written to ``<work_dir>/signatures/<rank>.npz``; records pass through untouched.
2. :class:`DedupClusters` (one task): exact groups, then datasketch LSH candidates confirmed by their estimated
   Jaccard, joined with union-find; writes ``<work_dir>/duplicates.jsonl`` (id, reason, kept id).
3. :class:`DedupFilter` (every task): drops the listed ids as ``exact_duplicate`` or ``near_duplicate``.

Each cluster keeps its earliest commit (ties: smallest id), so the result does not depend on task or worker count.
The paper's settings are the defaults (20-word shingles, threshold 0.75, 256 permutations: LSH bands (21, 12)).
Unlike the reference, a document shorter than one shingle gets a single shingle of all its words instead of an
empty signature (the reference put every such document in one cluster and kept only one of them).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from themis_rm.data.base import BaseFilter, CountingStep, DocumentsPipeline
from themis_rm.data.config import DedupConfig, MinHashConfig
from themis_rm.errors import MissingExtraError, ThemisInputError

_WORD = re.compile(r"[A-Za-z0-9_]+")


def shingles(text: str, size: int) -> set[bytes]:
    """Word ``size``-grams; a text with fewer words gives one shingle of all of them, an empty text none."""
    words = _WORD.findall(text)
    if len(words) < size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


class MinHasher:
    """datasketch MinHashes with the permutations built once (building them dominates for short texts)."""

    def __init__(self, config: MinHashConfig) -> None:
        try:
            from datasketch import MinHash
        except ImportError as exc:
            raise MissingExtraError("datasketch", "data") from exc
        self.config = config
        self._minhash = MinHash
        self._template = MinHash(num_perm=config.num_perm, seed=config.seed)

    def signature(self, text: str) -> np.ndarray | None:
        """The MinHash values of ``text`` (uint32 array of ``num_perm``), None when it has no words."""
        grams = shingles(text, self.config.shingle_size)
        if not grams:
            return None
        mh = self._minhash(
            num_perm=self.config.num_perm,
            seed=self.config.seed,
            permutations=self._template.permutations,
            scheme=self._template.scheme,
        )
        mh.update_batch(list(grams))
        return np.asarray(mh.hashvalues)


def exact_key(doc) -> str:
    """Identity of a change: the same old and new contents give the same key, wherever they were committed."""
    old = (doc.metadata.get("old_contents") or "").encode()
    return hashlib.sha256(old + b"\0" + doc.text.encode()).hexdigest()[:32]


def near_text(doc, name: str) -> str:
    return doc.text if name == "new_contents" else doc.metadata.get(name) or ""


class DedupSignatures(CountingStep):
    """Writes each task's exact keys and MinHash signatures; documents pass through unchanged."""

    type = "🫂 - DEDUP"
    name = "dedup_signatures"

    def __init__(self, work_dir: str, config: DedupConfig) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.config = config

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        hasher = MinHasher(self.config.minhash) if self.config.near else None
        ids, orders, keys, sigs = [], [], [], []
        empty = np.zeros(self.config.minhash.num_perm, dtype=np.uint64)
        for doc in data:
            ids.append(doc.id)
            orders.append(f"{doc.metadata.get('date') or ''}\0{doc.id}")
            keys.append(exact_key(doc))
            signature = hasher.signature(near_text(doc, self.config.minhash.field)) if hasher else None
            if hasher and signature is None:
                self.stat_update("no_shingles")
            sigs.append(empty if signature is None else signature.astype(np.uint64))
            self.count("forwarded")
            yield doc
        out = Path(self.work_dir) / "signatures"
        out.mkdir(parents=True, exist_ok=True)
        np.savez(
            out / f"{rank:05d}.npz",
            ids=np.array(ids, dtype=str),
            orders=np.array(orders, dtype=str),
            keys=np.array(keys, dtype=str),
            sigs=np.stack(sigs) if sigs else np.zeros((0, len(empty)), dtype=np.uint64),
        )


class DedupClusters(CountingStep):
    """Reads every task's signatures and decides which records are duplicates (run with one task)."""

    type = "🫂 - DEDUP"
    name = "dedup_clusters"

    def __init__(self, work_dir: str, config: DedupConfig) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ThemisInputError(f"the dedup cluster step must run as a single task, got {world_size} tasks")
        ids, orders, keys, sigs = _load_signatures(Path(self.work_dir) / "signatures")
        duplicates = find_duplicates(ids, orders, keys, sigs, self.config)
        for reason, _ in duplicates.values():
            self.stat_update(f"found_{reason}")
        self.stat_update("records", value=len(ids))
        path = Path(self.work_dir) / "duplicates.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for doc_id in sorted(duplicates):
                reason, kept = duplicates[doc_id]
                handle.write(json.dumps({"id": doc_id, "reason": reason, "kept": kept}) + "\n")
        if data:
            yield from data


def find_duplicates(ids, orders, keys, sigs, config: DedupConfig) -> dict[str, tuple[str, str]]:
    """id -> (``exact_duplicate`` | ``near_duplicate``, id kept in its cluster); survivors are absent."""
    order = sorted(range(len(ids)), key=lambda i: orders[i])
    duplicates: dict[str, tuple[str, str]] = {}
    representatives: list[int] = []
    if config.exact:
        first: dict[str, int] = {}
        for i in order:
            if keys[i] in first:
                duplicates[ids[i]] = ("exact_duplicate", ids[first[keys[i]]])
            else:
                first[keys[i]] = i
                representatives.append(i)
    else:
        representatives = order
    if config.near:
        for i, root in _near_clusters(representatives, sigs, config.minhash).items():
            duplicates[ids[i]] = ("near_duplicate", ids[root])
    return duplicates


def _near_clusters(candidates: list[int], sigs: np.ndarray, config: MinHashConfig) -> dict[int, int]:
    """Member -> kept member for every near-duplicate; ``candidates`` come in keep-priority order."""
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    parent = {i: i for i in candidates}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rank = {i: r for r, i in enumerate(candidates)}
    for i in candidates:
        if not sigs[i].any():
            continue  # no words: never a near-duplicate of anything
        minhash = LeanMinHash(seed=config.seed, hashvalues=sigs[i].astype(np.uint32), scheme="affine32")
        for j in lsh.query(minhash):
            if config.verify and float(np.mean(sigs[i] == sigs[j])) < config.threshold:
                continue
            a, b = find(i), find(j)
            if a != b:
                keep, drop = (a, b) if rank[a] < rank[b] else (b, a)
                parent[drop] = keep
        lsh.insert(i, minhash)
    return {i: find(i) for i in candidates if find(i) != i}


def _load_signatures(folder: Path):
    files = sorted(folder.glob("*.npz"))
    if not files:
        return [], [], [], np.zeros((0, 1), dtype=np.uint64)
    parts = [np.load(path) for path in files]
    ids = [str(x) for part in parts for x in part["ids"]]
    orders = [str(x) for part in parts for x in part["orders"]]
    keys = [str(x) for part in parts for x in part["keys"]]
    sigs = np.concatenate([part["sigs"] for part in parts])
    return ids, orders, keys, sigs


class DedupFilter(BaseFilter):
    """Drops the records the cluster step listed, with its reason."""

    name = "dedup"

    def __init__(self, work_dir: str) -> None:
        super().__init__()
        self.work_dir = work_dir
        self._reasons: dict[str, str] | None = None

    def filter(self, doc) -> bool | tuple[bool, str]:
        if self._reasons is None:
            path = Path(self.work_dir) / "duplicates.jsonl"
            with path.open(encoding="utf-8") as handle:
                self._reasons = {row["id"]: row["reason"] for row in map(json.loads, handle)}
        reason = self._reasons.get(doc.id)
        return (False, reason) if reason else True
