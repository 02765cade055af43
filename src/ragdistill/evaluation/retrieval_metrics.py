"""Retrieval quality against known gold passages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def recall_at_k(hits: Sequence[Sequence], gold_ids: Sequence[set[str] | None], ks: Iterable[int] = (1, 3, 5)) -> dict:
    """Mean over examples with gold of ``|gold ∩ top-k| / |gold|`` (``recall@k``) and of "any gold in the top k"
    (``hit@k``; the same as recall@k when each example has one gold passage). ``hits[i]`` are the ranked hits of
    example ``i`` (objects with ``.id``, or ids); examples whose gold set is empty or None are left out and
    counted in ``without_gold``."""
    if len(hits) != len(gold_ids):
        raise ValueError(f"{len(hits)} hit lists for {len(gold_ids)} gold sets")
    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 1:
        raise ValueError("ks must be positive")
    recall = {k: 0.0 for k in ks}
    any_hit = {k: 0 for k in ks}
    evaluated = 0
    for ranked, gold in zip(hits, gold_ids):
        if not gold:
            continue
        evaluated += 1
        ids = [h if isinstance(h, str) else h.id for h in ranked]
        for k in ks:
            found = len(set(ids[:k]) & set(gold))
            recall[k] += found / len(gold)
            any_hit[k] += found > 0
    result: dict = {"n": evaluated, "without_gold": len(hits) - evaluated}
    for k in ks:
        result[f"recall@{k}"] = recall[k] / evaluated if evaluated else None
    for k in ks:
        result[f"hit@{k}"] = any_hit[k] / evaluated if evaluated else None
    return result
