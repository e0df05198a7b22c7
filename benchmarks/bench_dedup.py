"""MinHash near-duplicate benchmark: documents per second and recall on planted near-duplicates.

Corpus: chunks of real code (the Python standard library's own sources, 100 lines each). A share of them get a planted
copy with a few lines edited; the true Jaccard similarity of each planted pair is computed exactly on the same
20-word shingles the dedup uses. Recall is the share of planted pairs above the threshold that end in one cluster;
planted pairs well below the threshold that are merged anyway are false positives.

    .venv/bin/python benchmarks/bench_dedup.py --docs 20000 --planted 2000
"""

from __future__ import annotations

import argparse
import json
import random
import sysconfig
import time
from pathlib import Path

import numpy as np

from themis_rm.data.dedup import DedupConfig, MinHashConfig, MinHasher, find_duplicates, shingles


def code_chunks(n: int, lines: int = 100) -> list[str]:
    """``n`` distinct chunks of real code from the standard library (deterministic order)."""
    chunks: list[str] = []
    seen: set[str] = set()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for start in range(0, len(text) - lines, lines):
            chunk = "\n".join(text[start : start + lines])
            if len(chunk.split()) > 200 and chunk not in seen:
                seen.add(chunk)
                chunks.append(chunk)
                if len(chunks) == n:
                    return chunks
    raise SystemExit(f"only {len(chunks)} chunks available; ask for fewer --docs")


def plant(text: str, rng: random.Random) -> str:
    """Edit 1-4 random lines (append a token), the kind of drift forks and cherry-picks show."""
    lines = text.split("\n")
    for i in rng.sample(range(len(lines)), rng.randint(1, 4)):
        lines[i] = lines[i] + f" edited_{rng.randint(0, 999)}"
    return "\n".join(lines)


def jaccard(a: str, b: str, size: int) -> float:
    x, y = shingles(a, size), shingles(b, size)
    return len(x & y) / max(1, len(x | y))


def run(docs: int, planted: int, seed: int, verify: bool = True) -> dict:
    config = DedupConfig(exact=False, near=True, minhash=MinHashConfig(verify=verify))
    rng = random.Random(seed)
    base = code_chunks(docs - planted)
    originals = rng.sample(range(len(base)), planted)
    texts = base + [plant(base[i], rng) for i in originals]
    truth = [jaccard(base[i], texts[len(base) + k], config.minhash.shingle_size) for k, i in enumerate(originals)]

    hasher = MinHasher(config.minhash)
    start = time.perf_counter()
    sigs = np.stack([hasher.signature(t).astype(np.uint64) for t in texts])
    signature_s = time.perf_counter() - start
    ids = [f"d{i:07d}" for i in range(len(texts))]
    start = time.perf_counter()
    duplicates = find_duplicates(ids, ids, ids, sigs, config)
    cluster_s = time.perf_counter() - start

    def cluster(doc_id: str) -> str:
        return duplicates[doc_id][1] if doc_id in duplicates else doc_id

    def merged(k: int) -> bool:
        return cluster(ids[len(base) + k]) == cluster(ids[originals[k]])

    above = [k for k, j in enumerate(truth) if j >= config.minhash.threshold]
    buckets = {}
    for low, high in ((0.75, 0.85), (0.85, 0.95), (0.95, 1.01)):
        members = [k for k, j in enumerate(truth) if low <= j < high]
        buckets[f"{low:.2f}-{min(high, 1.0):.2f}"] = {
            "pairs": len(members),
            "recall": sum(merged(k) for k in members) / max(1, len(members)),
        }
    far_below = [k for k, j in enumerate(truth) if j < config.minhash.threshold - 0.15]
    planted_ids = {ids[len(base) + k] for k in range(planted)}
    return {
        "docs": len(texts),
        "planted_pairs": planted,
        "planted_above_threshold": len(above),
        "recall_above_threshold": sum(merged(k) for k in above) / max(1, len(above)),
        "recall_by_true_jaccard": buckets,
        "planted_far_below": len(far_below),
        "merged_far_below": sum(merged(k) for k in far_below),
        "other_drops": sum(1 for d in duplicates if d not in planted_ids),
        "signature_docs_per_s": len(texts) / signature_s,
        "cluster_docs_per_s": len(texts) / cluster_s,
        "total_docs_per_s": len(texts) / (signature_s + cluster_s),
        "mean_words_per_doc": float(np.mean([len(t.split()) for t in texts])),
        "settings": vars(config.minhash),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--planted", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-verify", action="store_true", help="Merge LSH candidates without the Jaccard check.")
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()
    results = run(args.docs, args.planted, args.seed, verify=not args.no_verify)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
