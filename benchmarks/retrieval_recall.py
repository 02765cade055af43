"""Recall@k of OpenBookQA's gold fact (``fact1``) against the open book, for BM25, dense and hybrid retrieval.

Train questions choose a configuration; dev questions are reported only. Two queries per question: the stem
alone ("question") and the stem followed by the text of the four choices ("question+choices"). Also times
building each index and answering queries.

    .venv/bin/python benchmarks/retrieval_recall.py                       # everything (a few minutes on 2 cores)
    .venv/bin/python benchmarks/retrieval_recall.py --splits dev --methods bm25

Writes ``reports/retrieval_recall.{md,json}`` (``--out``) with the command that made them and the wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"train": "train", "dev": "eval"}  # reported name -> registry split


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = os.environ.get("RAGDISTILL_DATA") or str(REPO.parent / "shared" / "data")
    parser.add_argument("--data-root", default=default_root)
    parser.add_argument("--methods", nargs="+", default=["bm25", "dense", "hybrid"])
    parser.add_argument("--queries", nargs="+", default=["question", "question+choices"])
    parser.add_argument("--splits", nargs="+", default=["train", "dev"], choices=list(SPLITS))
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--model", default=None, help="dense model (default: the zoo's all-MiniLM-L6-v2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=str(REPO / "reports" / "retrieval_recall"), help="path without suffix")
    return parser.parse_args(argv)


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(report: dict) -> str:
    ks = report["ks"]
    lines = [
        "# OpenBookQA: recall of the gold fact from the open book",
        "",
        f"Corpus: the {report['corpus_size']} facts of `openbookqa/Main/openbook.txt`. Gold: each question's "
        "`fact1` (from `Additional/*_complete.jsonl`), one book line per question; questions whose fact is not "
        f"a book line are left out (train {report['without_gold'].get('train', '–')}, "
        f"dev {report['without_gold'].get('dev', '–')}). Queries: `question` = the stem alone, "
        "`question+choices` = the stem followed by the text of the four choices. Recall@k = share of questions "
        "whose gold fact is among the top k.",
        "",
        f"Train questions choose the configuration (highest train recall@{report['selection_k']}, then recall@1); "
        "dev is reported only.",
        "",
        "| method | query | " + " | ".join(f"train R@{k}" for k in ks) + " | " + " | ".join(f"dev R@{k}" for k in ks)
        + " | queries/s |",
        "| --- | --- | " + " | ".join("---:" for _ in ks * 2) + " | ---: |",
    ]
    for row in report["results"]:
        cells = [fmt(row.get("train", {}).get(f"recall@{k}")) for k in ks]
        cells += [fmt(row.get("dev", {}).get(f"recall@{k}")) for k in ks]
        name = f"**{row['method']}**" if row["config"] == report.get("chosen") else row["method"]
        lines.append(f"| {name} | {row['query']} | " + " | ".join(cells) + f" | {row['queries_per_s']:.0f} |")
    lines += [
        "",
        f"Chosen on train: **{report.get('chosen') or '– (train not run)'}**.",
        "",
        "| method | index build (s) |",
        "| --- | ---: |",
    ]
    lines += [f"| {method} | {seconds:.2f} |" for method, seconds in report["build_seconds"].items()]
    lines += [
        "",
        "Build time: fitting on the open book (dense and hybrid: loading the model from disk and encoding every "
        "fact, no embedding cache; imports and a first model load are done before, untimed). Timings are from a "
        "shared 2-core machine and vary by tens of percent between runs; recall is deterministic. "
        "Queries/s: all questions of the splits above for that query type, batched, on the CPU "
        f"({report['machine']['cpus']} cores, torch threads {report['machine']['torch_threads']}).",
        "",
        f"Command: `{report['command']}`  ",
        f"Wall time: {report['wall_seconds']:.1f} s · {report['finished']}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import sentence_transformers  # noqa: F401  (a one-time import, kept out of the index build times)

    from ragdistill.data.corpora import load_openbook
    from ragdistill.data.registry import load_dataset
    from ragdistill.evaluation.retrieval_metrics import recall_at_k
    from ragdistill.io import write_json, write_text
    from ragdistill.registry import QUERIES, load
    from ragdistill.retrieval import build_retriever
    from ragdistill.retrieval.run import search_all

    root = Path(args.data_root)
    book = load_openbook(root)
    questions = {split: load_dataset("openbookqa", root, SPLITS[split]) for split in args.splits}
    gold = {split: [{e.meta["gold_fact_id"]} if e.meta["gold_fact_id"] else None for e in examples]
            for split, examples in questions.items()}
    k_max = max(args.ks)
    dense_kwargs = {"model": args.model, "progress": False} if args.model else {"progress": False}

    # Warm-up, untimed: the first model load in a process also pays for lazy imports inside transformers.
    if {"dense", "hybrid"} & set(args.methods):
        build_retriever("dense", **dense_kwargs).encode(["warm up"])

    build_seconds: dict[str, float] = {}
    results = []
    for method in args.methods:
        retriever = build_retriever(method, **({} if method == "bm25" else dense_kwargs))
        t0 = time.perf_counter()
        retriever.fit(book)
        build_seconds[method] = time.perf_counter() - t0
        print(f"{method}: index built in {build_seconds[method]:.2f} s", file=sys.stderr, flush=True)
        for query_name in args.queries:
            row: dict = {"method": method, "query": query_name, "config": f"{method} / {query_name}"}
            searched, seconds = 0, 0.0
            for split, examples in questions.items():
                query_fn = load(QUERIES[query_name])
                queries = [query_fn(e) for e in examples]
                t0 = time.perf_counter()
                hits = search_all(retriever, queries, k_max)
                seconds += time.perf_counter() - t0
                searched += len(queries)
                row[split] = recall_at_k(hits, gold[split], args.ks)
            row["queries"], row["search_seconds"] = searched, round(seconds, 3)
            row["queries_per_s"] = searched / seconds if seconds else float("inf")
            results.append(row)
            summary = ", ".join(f"{s} R@{k_max}={row[s][f'recall@{k_max}']:.3f}" for s in questions)
            print(f"  {row['config']}: {summary}, {row['queries_per_s']:.0f} q/s", file=sys.stderr, flush=True)

    selection_k = 5 if 5 in args.ks else k_max
    chosen = None
    if "train" in args.splits and results:
        best = max(results, key=lambda r: (r["train"][f"recall@{selection_k}"], r["train"][f"recall@{min(args.ks)}"]))
        chosen = best["config"]
    out = Path(args.out)
    report = {
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/retrieval_recall.py",
                                                      *(sys.argv[1:] if argv is None else argv)]),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "data_root": str(root),
        "corpus": "openbookqa/Main/openbook.txt",
        "corpus_size": len(book),
        "questions": {split: len(examples) for split, examples in questions.items()},
        "without_gold": {split: sum(g is None for g in gold[split]) for split in questions},
        "ks": args.ks,
        "selection_k": selection_k,
        "chosen": chosen,
        "dense_model": args.model or "all-minilm-l6-v2 (ragdistill.zoo.minilm_path())",
        "build_seconds": {m: round(s, 3) for m, s in build_seconds.items()},
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "results": results,
    }
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), markdown(report))
    print(f"wrote {out.with_suffix('.md')} and .json in {report['wall_seconds']:.1f} s", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
