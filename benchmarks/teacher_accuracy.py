"""The teacher's own accuracy without and with retrieval, on the first N questions of an evaluation split.

    .venv/bin/python benchmarks/teacher_accuracy.py --dataset openbookqa --n 200

Uses the pipeline's own pieces with the default parameters of params.yaml (corpus, retriever, k, query,
teacher model, demonstrations, decoding) and the pipeline's annotation cache (.cache/teacher), so the
answers are reused by `annotate-teacher` and a rerun asks nothing twice. Writes
reports/teacher_accuracy-<dataset>.{md,json}: accuracy with 95% bootstrap intervals, the paired
bootstrap of rag - plain, and accuracy split by whether the gold fact was retrieved.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ragdistill import paths
from ragdistill.config import load_params
from ragdistill.data.corpora import build_corpus, self_exclusion
from ragdistill.data.registry import load_dataset, resolve_data_root, task_kind
from ragdistill.evaluation.metrics import accuracy_summary, is_correct, paired_bootstrap
from ragdistill.io import write_json, write_text
from ragdistill.pipeline.annotate_teacher import remember_footprint, teacher_kwargs
from ragdistill.registry import QUERIES, load
from ragdistill.retrieval import build_retriever
from ragdistill.retrieval.run import retrieve_for_examples
from ragdistill.teachers.annotate import annotate
from ragdistill.teachers.base import DecodingSettings, build_teacher
from ragdistill.teachers.cache import AnnotationCache
from ragdistill.teachers.demonstrations import pick_demonstrations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="openbookqa")
    parser.add_argument("--n", type=int, default=200, help="first N evaluation questions")
    args = parser.parse_args()
    params = load_params()
    started = time.perf_counter()
    root = resolve_data_root(params.data.root)
    train = load_dataset(args.dataset, root, "train")
    questions = load_dataset(args.dataset, root, "eval")[: args.n]
    corpus = params.corpus(args.dataset)
    passages = build_corpus(corpus, root=root, examples=train)
    rows = retrieve_for_examples(questions, passages, build_retriever(params.retrieval.method), params.retrieval.k,
                                 self_exclusion(passages), load(QUERIES[params.retrieval.query]))
    evidence = {row["id"]: row["passages"] for row in rows}
    demonstrations = pick_demonstrations(args.dataset, train, params.teacher_model.demonstrations)
    settings = DecodingSettings(max_new_tokens=params.teacher_model.max_new_tokens)
    cache = AnnotationCache(paths.TEACHER_CACHE / f"{args.dataset}.jsonl")
    kind = task_kind(args.dataset)
    correct, stats = {}, {}
    with build_teacher(params.teacher_model.backend, **teacher_kwargs(params)) as teacher:
        for name, by_id in (("plain", None), ("rag", evidence)):
            annotated, run_stats = annotate(questions, teacher, settings, demonstrations, by_id, cache,
                                            label_policy="keep")
            correct[name] = [is_correct(e.teacher_label, e.label, kind) for e in annotated]
            stats[name] = run_stats.to_dict()
        remember_footprint(params, teacher.footprint())
    report = {"dataset": args.dataset, "n": len(questions), "teacher": params.teacher_model.model,
              "retrieval": {"corpus": corpus, "method": params.retrieval.method, "k": params.retrieval.k,
                            "query": params.retrieval.query},
              "accuracy": {name: accuracy_summary(values, params.eval.bootstrap, params.eval.seed)
                           for name, values in correct.items()},
              "rag_minus_plain": paired_bootstrap(correct["rag"], correct["plain"]), "stats": stats,
              "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "seconds": round(time.perf_counter() - started, 1)}
    gold = [e.meta.get("gold_fact_id") for e in questions]
    if any(gold):
        found = [g in {p["id"] for p in evidence[e.id]} for g, e in zip(gold, questions)]
        report["by_gold_retrieved"] = {
            label: {name: accuracy_summary([c for c, f in zip(correct[name], found) if f == want])
                    for name in correct} | {"n": sum(1 for f in found if f == want)}
            for label, want in (("gold fact retrieved", True), ("gold fact not retrieved", False))}
    out = paths.REPORTS / f"teacher_accuracy-{args.dataset}"
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), render(report))
    print(render(report))


def render(report: dict) -> str:
    def cell(summary: dict) -> str:
        return f"{100 * summary['accuracy']:.1f} [{100 * summary['ci_low']:.1f}, {100 * summary['ci_high']:.1f}]"

    r = report["retrieval"]
    diff = report["rag_minus_plain"]
    lines = [f"# Teacher accuracy on {report['dataset']}: plain vs RAG", "",
             f"Teacher `{report['teacher']}`, the first {report['n']} evaluation questions; RAG: top {r['k']} of "
             f"`{r['corpus']}` by {r['method']} ({r['query']}). Accuracy % with 95% bootstrap intervals.", "",
             "| teacher | accuracy % | examples/s (new queries) |", "| --- | --- | ---: |"]
    for name in ("plain", "rag"):
        lines.append(f"| {name} | {cell(report['accuracy'][name])} | {report['stats'][name]['examples_per_s']:.2f} |")
    lines += ["", f"RAG − plain (paired bootstrap): {100 * diff['difference']:+.1f} points, 95% interval "
              f"[{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}], p = {diff['p_value']}."]
    if "by_gold_retrieved" in report:
        lines += ["", "| subset | n | plain % | rag % |", "| --- | ---: | --- | --- |"]
        for label, part in report["by_gold_retrieved"].items():
            lines.append(f"| {label} | {part['n']} | {cell(part['plain'])} | {cell(part['rag'])} |")
    lines += ["", f"Command: `{report['command']}` ({report['seconds']} s, replies cached in `.cache/teacher`).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
