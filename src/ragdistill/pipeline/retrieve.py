"""Stage retrieve: the top-k passages of every example from the dataset's corpus, and recall."""

from __future__ import annotations

import time

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.corpora import build_corpus, self_exclusion
from ragdistill.data.example import Example, load_examples
from ragdistill.data.registry import resolve_data_root
from ragdistill.evaluation.retrieval_metrics import recall_at_k
from ragdistill.io import write_json, write_jsonl
from ragdistill.log import log
from ragdistill.registry import QUERIES, load
from ragdistill.retrieval import build_retriever
from ragdistill.retrieval.base import Hit
from ragdistill.retrieval.run import retrieve_for_examples


def memory_examples(train: list[Example]) -> list[Example]:
    """Solved examples for the memory: question and gold label, with no teacher rationale (a RAG teacher
    must not read another teacher's reasoning), so the memory entry says only what the gold data says."""
    return [Example(**{**example.to_dict(), "rationale": None, "teacher_label": None}) for example in train]


class LiveRetrieval:
    """The retrieve stage's retrieval, for questions asked after it ran (a served RAG teacher, the teacher
    selection): the dataset's corpus indexed once, then ``retrieval(examples) -> {id: passages}``.
    ``settings`` (method, k, query, min_score) replace those of ``params.retrieval``."""

    def __init__(self, params: Params, dataset: str, train: list[Example], settings: dict | None = None) -> None:
        chosen = {"method": params.retrieval.method, "k": params.retrieval.k, "query": params.retrieval.query,
                  "min_score": params.retrieval.min_score, **(settings or {})}
        corpus = params.corpus(dataset)
        self.passages = build_corpus(corpus, root=resolve_data_root(params.data.root),
                                     examples=memory_examples(train) if corpus == "solved_examples" else train)
        self.retriever = build_retriever(chosen["method"])
        self.retriever.fit(self.passages)
        self.k, self.min_score = chosen["k"], chosen["min_score"]
        self.query = load(QUERIES[chosen["query"]])
        self.exclude = self_exclusion(self.passages)

    def __call__(self, examples: list[Example]) -> dict[str, list[dict]]:
        rows = retrieve_for_examples(examples, self.passages, self.retriever, self.k, self.exclude, self.query,
                                     self.min_score)
        return {row["id"]: row["passages"] for row in rows}


def run(params: Params, dataset: str) -> dict:
    started = time.perf_counter()
    train = load_examples(paths.prepared(dataset, "train"))
    evaluation = load_examples(paths.prepared(dataset, "eval"))
    corpus = params.corpus(dataset)
    source = memory_examples(train) if corpus == "solved_examples" else train
    passages = build_corpus(corpus, root=resolve_data_root(params.data.root), examples=source)
    log(f"{dataset}: retrieving the top {params.retrieval.k} of {len(passages)} passages ({corpus}, "
        f"{params.retrieval.method}) for {len(train)} training and {len(evaluation)} evaluation examples")
    retriever = build_retriever(params.retrieval.method)
    searching = time.perf_counter()
    rows = retrieve_for_examples(train + evaluation, passages, retriever, params.retrieval.k,
                                 self_exclusion(passages), load(QUERIES[params.retrieval.query]),
                                 params.retrieval.min_score)
    # Per query, with the corpus encoding and index build spread over all queries (an upper bound).
    seconds_per_query = (time.perf_counter() - searching) / max(1, len(rows))
    write_jsonl(paths.retrieved(dataset), rows)
    report: dict = {"dataset": dataset, "corpus": corpus, "passages": len(passages), "method": params.retrieval.method,
                    "k": params.retrieval.k, "query": params.retrieval.query, "min_score": params.retrieval.min_score,
                    "passages_per_question": round(sum(len(r["passages"]) for r in rows) / max(1, len(rows)), 3),
                    "seconds_per_query": round(seconds_per_query, 5)}
    by_id = {row["id"]: row for row in rows}
    for split_name, examples in (("train", train), ("eval", evaluation)):
        gold = [{e.meta["gold_fact_id"]} if e.meta.get("gold_fact_id") else set() for e in examples]
        if any(gold):
            hits = [[Hit(p["id"], p["score"], p["text"]) for p in by_id[e.id]["passages"]] for e in examples]
            ks = tuple(k for k in (1, 3, 5) if k <= params.retrieval.k) or (params.retrieval.k,)
            report[f"recall_{split_name}"] = recall_at_k(hits, gold, ks=ks)
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_json(paths.REPORTS / "retrieval" / f"{dataset}.json", report)
    return report
