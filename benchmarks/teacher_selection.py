"""Choosing the teacher on training questions: every configuration on the teacher-selection set.

    .venv/bin/python benchmarks/teacher_selection.py --dataset openbookqa            # every configuration
    .venv/bin/python benchmarks/teacher_selection.py --configs plain rag-dense-k3 --n 50

The selection set is ``split.teacher_selection`` training questions that no student learns from or validates
on at any fraction (``ragdistill.data.split.teacher_selection_set``); the evaluation split is never
read. Per configuration: the teacher's own accuracy, paired against the plain teacher, the share of questions
whose gold fact was among the facts it read, and its rationales' length and gold-fact overlap. The oracle reads
only the question's gold fact: the ceiling retrieval could reach, not a teacher one can deploy. The chosen
configuration is the usable one with the highest accuracy. Replies go to the pipeline's annotation cache
(``.cache/teacher``), and the report is rewritten after each configuration with every question's result, so
a rerun with the same setup asks nothing twice, even on a machine without that cache. Writes
``reports/teacher/selection.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ragdistill import paths
from ragdistill.config import load_params
from ragdistill.data.example import Example, gold_fact_evidence, load_examples
from ragdistill.data.registry import task_kind
from ragdistill.data.split import teacher_selection_set
from ragdistill.evaluation.metrics import accuracy_summary, is_correct, paired_bootstrap
from ragdistill.io import read_json, write_json, write_text
from ragdistill.machine import describe
from ragdistill.pipeline.annotate_teacher import annotation_record, remember_footprint, teacher_kwargs
from ragdistill.pipeline.retrieve import LiveRetrieval
from ragdistill.teachers.annotate import annotate
from ragdistill.teachers.base import DecodingSettings, LazyTeacher
from ragdistill.teachers.cache import AnnotationCache
from ragdistill.teachers.demonstrations import pick_demonstrations
from ragdistill.teachers.quality import rationale_quality

# name -> what it changes from a plain teacher. min_score drops retrieved facts below a retriever score;
# question+each_choice scores a fact by the choice it supports best. Neither the oracle nor a rationalizing
# configuration can be chosen: one reads the gold fact, the other the gold answer.
CONFIGS = {
    "plain": {},
    "rag-dense-k3": {"method": "dense", "k": 3},
    "rag-dense-k1": {"method": "dense", "k": 1},
    "rag-dense-k2": {"method": "dense", "k": 2},
    "rag-dense-k5": {"method": "dense", "k": 5},
    "rag-hybrid-k3": {"method": "hybrid", "k": 3},
    "rag-dense-k3-min0.5": {"method": "dense", "k": 3, "min_score": 0.5},
    "rag-dense-k3-each-choice": {"method": "dense", "k": 3, "query": "question+each_choice"},
    "oracle": {"oracle": True},
    # Shown each question's gold answer, the teacher explains it (STaR, KARD): not a teacher of its own, but
    # how often its rationale ends on the gold answer it was given, and what the rationale carries.
    "plain-rationalize": {"rationalize": True},
    "rag-dense-k1-rationalize": {"method": "dense", "k": 1, "rationalize": True},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="openbookqa")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--n", type=int, default=None, help="the first N of the selection set (default: all)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default=str(paths.REPORTS / "teacher" / "selection"), help="path without suffix")
    return parser.parse_args(argv)


def evidence_for(config: dict, questions: list[Example], train: list[Example], params, dataset: str
                 ) -> dict[str, list[dict]] | None:
    """Per question, the facts the configuration's teacher reads; None for a plain teacher."""
    if config.get("oracle"):
        return gold_fact_evidence(questions)
    if "method" not in config:
        return None
    chosen = {key: config[key] for key in ("method", "k", "query", "min_score") if key in config}
    return LiveRetrieval(params, dataset, train, {"min_score": None, **chosen})(questions)


def gold_recall(questions: list[Example], evidence: dict[str, list[dict]] | None) -> float | None:
    """The share of questions whose gold fact is among the facts read (None: no evidence, or no gold ids)."""
    with_gold = [e for e in questions if e.meta.get("gold_fact_id")]
    if evidence is None or not with_gold:
        return None
    found = sum(e.meta["gold_fact_id"] in {p["id"] for p in evidence.get(e.id, [])} for e in with_gold)
    return round(100 * found / len(with_gold), 2)


def gold_read_flags(questions: list[Example], evidence: dict[str, list[dict]] | None
                    ) -> list[int | None] | None:
    """Per question (in order), 1 where its gold fact was among the facts read, else 0 (None for a question
    without a gold fact id); None without evidence."""
    if evidence is None or not any(e.meta.get("gold_fact_id") for e in questions):
        return None
    return [None if not e.meta.get("gold_fact_id") else
            int(e.meta["gold_fact_id"] in {p["id"] for p in evidence.get(e.id, [])}) for e in questions]


def _by_gold_read(correct: list[bool], plain: list[bool], read: list[int | None]) -> dict:
    """Accuracy, and the plain teacher's on the same questions, where the gold fact was read and where not:
    whether the configuration gains where retrieval found the fact and loses where it did not."""
    out = {}
    for part, wanted in (("read", 1), ("not_read", 0)):
        idx = [i for i, flag in enumerate(read) if flag == wanted]
        out[part] = {"n": len(idx),
                     "accuracy": round(100 * sum(correct[i] for i in idx) / len(idx), 1) if idx else None,
                     "plain": round(100 * sum(plain[i] for i in idx) / len(idx), 1) if idx else None}
    return out


def _earlier_rows(out: Path, setup: dict) -> dict:
    """The rows of an earlier run with the same setup (questions, teacher, decoding), so that a run stopped
    part-way, or one on another machine without the reply cache, is not asked again."""
    path = out.with_suffix(".json")
    if not path.exists():
        return {}
    earlier = read_json(path)
    if any(earlier.get(key) != value for key, value in setup.items()):
        return {}
    return earlier.get("rows", {})


def _finish(report: dict, correct: dict[str, list[bool]], params) -> dict:
    """The paired differences to the plain teacher and the chosen configuration, over the rows so far."""
    rows = report["rows"]
    if "plain" in correct:
        for name in rows:
            if name != "plain" and name in correct and not CONFIGS[name].get("rationalize"):
                if rows[name].get("gold_read"):
                    rows[name]["by_gold_read"] = _by_gold_read(correct[name], correct["plain"],
                                                               rows[name]["gold_read"])
                test = paired_bootstrap(correct[name], correct["plain"], params.eval.bootstrap, params.eval.seed)
                rows[name]["minus_plain"] = {"diff": round(100 * test["difference"], 2),
                                             "low": round(100 * test["ci_low"], 2),
                                             "high": round(100 * test["ci_high"], 2)}
    usable = [n for n in rows if not (CONFIGS[n].get("oracle") or CONFIGS[n].get("rationalize")) and n != "plain"]
    report["chosen_rag"] = max(usable, key=lambda n: rows[n]["accuracy"]["accuracy"]) if usable else None
    return report


def _write(report: dict, out: Path) -> None:
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), markdown(report))


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    params = load_params(args.params)
    dataset, model = args.dataset, params.teacher_model
    train = load_examples(paths.prepared(dataset, "train"))
    selection = teacher_selection_set(train, params.split.teacher_selection, params.split.seed)[: args.n]
    kind = task_kind(dataset)
    settings = DecodingSettings(max_new_tokens=model.max_new_tokens)
    cache = AnnotationCache(paths.TEACHER_CACHE / f"{dataset}.jsonl")
    by_id = {e.id: e for e in selection}
    out = Path(args.out)
    setup = {"dataset": dataset, "question_ids": [e.id for e in selection], "teacher": model.model,
             "backend": model.backend, "demonstrations": model.demonstrations,
             "max_new_tokens": model.max_new_tokens, "query": params.retrieval.query}
    report = {**setup, "selection": len(selection), "seed": params.split.seed, "rows": {},
              "chosen_rag": None, "machine": describe(), "command": " ".join([Path(sys.executable).name, *sys.argv])}
    earlier = _earlier_rows(out, setup)
    # Rows of the earlier run stay in the report, also the ones not asked for this time.
    report["rows"] = {name: row for name, row in earlier.items() if name in CONFIGS}
    correct = {name: [bool(c) for c in row["correct"]] for name, row in report["rows"].items()}
    for row in report["rows"].values():  # rows kept from before per-question flags: retrieval only
        if "gold_read" not in row and (row["config"].get("method") or row["config"].get("oracle")):
            row["gold_read"] = gold_read_flags(selection, evidence_for(row["config"], selection, train, params,
                                                                       dataset))
    with LazyTeacher(model.backend, **teacher_kwargs(params)) as teacher:  # loaded only if something is asked
        for name in args.configs:
            if name in earlier:  # kept from a run with the same setup: its answers are in the row
                print(f"{name}: kept from the earlier run in {out.with_suffix('.json')}", file=sys.stderr)
                continue
            config = CONFIGS[name]
            evidence = evidence_for(config, selection, train, params, dataset)
            demonstrations = pick_demonstrations(dataset, train, model.demonstrations, evidence)
            began = time.perf_counter()
            hinted = {e.id for e in selection} if config.get("rationalize") else frozenset()
            annotated, stats = annotate(selection, teacher, settings, demonstrations, evidence, cache, hint_ids=hinted)
            correct[name] = [is_correct(e.teacher_label, e.label, kind) for e in annotated]
            records = [annotation_record(e, "train") for e in annotated]
            report["rows"][name] = {
                "config": config,
                "accuracy": accuracy_summary(correct[name], params.eval.bootstrap, params.eval.seed),
                "gold_fact_read": gold_recall(selection, evidence),
                "gold_read": gold_read_flags(selection, evidence),
                "facts_per_question": None if evidence is None else round(
                    sum(len(v) for v in evidence.values()) / len(selection), 2),
                "rationales": rationale_quality(records, by_id, kind),
                "seconds": round(time.perf_counter() - began, 1), "asked": stats.queried,
                "correct": [int(c) for c in correct[name]]}
            report["seconds"] = round(time.perf_counter() - started, 1)
            _write(_finish(report, correct, params), out)  # each finished configuration is kept
        if teacher.loaded:
            remember_footprint(params, teacher.footprint())
    report["seconds"] = round(time.perf_counter() - started, 1)
    return _finish(report, correct, params)


def markdown(report: dict) -> str:
    lines = ["# Teacher selection: every configuration on training questions", "",
             f"Generated by `benchmarks/teacher_selection.py`. {report['selection']} {report['dataset']} training "
             f"questions that no student learns from or validates on at any fraction (split "
             f"seed {report['seed']}); the evaluation split is not read. Teacher `{report['teacher']}` "
             f"({report['backend']}, greedy, {report['demonstrations']} demonstrations, at most "
             f"{report['max_new_tokens']} new tokens); retrieval query `{report['query']}`.", "",
             "Accuracy is the teacher's own label, with a 95% bootstrap interval; the difference to the plain "
             "teacher is paired on the same questions. *Gold fact read*: the share of questions whose gold fact "
             "was among the facts in the prompt. The rationale columns: median words, and the mean share of the "
             "gold fact's content words found in the rationale.", "",
             "| configuration | accuracy | minus plain | gold fact read % | facts per question | median words "
             "| gold-fact overlap | minutes |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in report["rows"].items():
        a, d, q = row["accuracy"], row.get("minus_plain"), row["rationales"]
        diff = f"{d['diff']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]" if d else "–"
        read = "–" if row["gold_fact_read"] is None else f"{row['gold_fact_read']:.1f}"
        facts = "–" if row["facts_per_question"] is None else f"{row['facts_per_question']:g}"
        overlap = "–" if q.get("gold_fact_overlap") is None else f"{q['gold_fact_overlap']:.2f}"
        label = (f"{name} (oracle: not deployable)" if CONFIGS[name].get("oracle") else
                 f"{name} (shown the gold answer)" if CONFIGS[name].get("rationalize") else name)
        lines.append(f"| {label} | {100 * a['accuracy']:.1f} [{100 * a['ci_low']:.1f}, {100 * a['ci_high']:.1f}] "
                     f"| {diff} | {read} | {facts} | {q.get('median_words', '–')} | {overlap} "
                     f"| {row['seconds'] / 60:.1f} |")
    split_rows = {name: row["by_gold_read"] for name, row in report["rows"].items() if row.get("by_gold_read")}
    if split_rows:
        lines += ["", "Where the gold fact was among the facts read, and where it was not: each configuration's "
                  "accuracy against the plain teacher's on the same questions.", "",
                  "| configuration | read: questions | accuracy | plain | not read: questions | accuracy | plain |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, parts in split_rows.items():
            cells = [f"{p['n']} | {'–' if p['accuracy'] is None else p['accuracy']} | "
                     f"{'–' if p['plain'] is None else p['plain']}" for p in (parts["read"], parts["not_read"])]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    n = report["selection"]
    lines += ["", f"With {n} questions one question is {100 / n:.1f} points; differences of a few points are noise.",
              "",
              "A configuration *shown the gold answer* rationalizes: its accuracy is how often its rationale ends "
              "on the answer it was given, the share of gold-consistent rationales it would give sbs, not an accuracy "
              "of its own.", "",
              f"Chosen RAG configuration (highest accuracy, the oracle and the rationalizing ones aside): "
              f"**{report['chosen_rag']}**.", "",
              f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores. Command: "
              f"`{report['command']}` ({report['seconds'] / 60:.1f} minutes; cached replies are not asked again, "
              "so minutes are those of this run)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    _write(report, Path(args.out))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
