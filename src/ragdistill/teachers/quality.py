"""What a teacher's published annotations are worth: its own accuracy, and what its rationales carry.

``python -m ragdistill.teachers.quality [--datasets openbookqa ...]`` reads the git-tracked annotation files
(``data/annotations/<dataset>-<teacher>.jsonl``) of every LLM teacher it finds and writes
``reports/teacher/summary.json`` and ``summary.md``: per dataset and teacher, dev accuracy with its 95%
interval, the paired RAG - plain (and oracle - plain) difference, and over the training questions it
annotated the share of rationales whose label is the gold one (its accuracy there), their length and their
gold-fact overlap.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

from ragdistill import paths
from ragdistill.data.example import Example, gold_facts, load_examples
from ragdistill.data.registry import DATASETS, task_kind
from ragdistill.evaluation.metrics import accuracy_summary, is_correct, paired_bootstrap
from ragdistill.io import DataError, read_jsonl, write_json, write_text
from ragdistill.log import log
from ragdistill.registry import TEACHERS

CONTENT_WORD = re.compile(r"[a-z]{4,}")  # words longer than 3 letters: what a fact says, not its glue
# (a, b): a - b on the same questions
PAIRS = (("rag", "plain"), ("oracle", "plain"), ("rag_rationalize", "plain_rationalize"))


def content_words(text: str) -> set[str]:
    return set(CONTENT_WORD.findall(text.lower()))


def fact_overlap(rationale: str | None, facts: list[str]) -> float | None:
    """The share of the gold facts' content words that appear in the rationale; None without a fact."""
    wanted = set().union(*(content_words(f) for f in facts)) if facts else set()
    if not wanted:
        return None
    return len(wanted & content_words(rationale or "")) / len(wanted)


def _own_label(record: dict) -> str | None:
    """The teacher's own label, before any ``gold_if_wrong`` correction."""
    return (record.get("meta") or {}).get("teacher_label_raw", record.get("teacher_label"))


def rationale_quality(records: list[dict], examples: dict[str, Example], kind: str) -> dict:
    """Over annotated training questions: how many, the share whose label is gold (so whose rationale argues
    for the answer a student is taught), the median rationale length in words, and the mean gold-fact
    overlap (over the questions with a gold fact)."""
    rows = [r for r in records if r["id"] in examples]
    if not rows:
        return {"n": 0}
    agree = [is_correct(_own_label(r), examples[r["id"]].label, kind) for r in rows]
    words = [len((r.get("rationale") or "").split()) for r in rows]
    overlaps = [o for r in rows if (o := fact_overlap(r.get("rationale"), gold_facts(examples[r["id"]]))) is not None]
    return {"n": len(rows), "gold_label_share": round(100 * sum(agree) / len(rows), 2),
            "median_words": statistics.median(words), "mean_words": round(statistics.fmean(words), 1),
            "gold_fact_overlap": round(statistics.fmean(overlaps), 3) if overlaps else None,
            "with_gold_fact": len(overlaps)}


def _correct(records: list[dict], examples: dict[str, Example], kind: str) -> dict[str, bool]:
    return {r["id"]: is_correct(_own_label(r), examples[r["id"]].label, kind) for r in records
            if r["id"] in examples}


def teacher_rows(dataset: str, teachers: list[str], resamples: int = 1000, seed: int = 0) -> dict:
    """Per teacher with a published annotation file: its dev accuracy (its own label, free answering) and
    its rationales' quality on the training questions it annotated (the share with the gold label is its
    accuracy there); then each pair of teachers, paired on the same dev questions."""
    train = {e.id: e for e in load_examples(paths.prepared(dataset, "train"))}
    evaluation = {e.id: e for e in load_examples(paths.prepared(dataset, "eval"))}
    kind = task_kind(dataset)
    rows, dev, gold_read = {}, {}, {}
    for teacher in teachers:
        source = paths.annotations(dataset, teacher)
        if not source.exists():
            continue
        records = [r for r in read_jsonl(source) if "rationale" in r]
        train_records = [r for r in records if r.get("split") == "train"]
        dev_records = [r for r in records if r.get("split") == "eval" and r["id"] in evaluation]
        dev[teacher] = _correct(dev_records, evaluation, kind)
        if TEACHERS[teacher].retrieval:
            gold_read[teacher] = {r["id"]: evaluation[r["id"]].meta.get("gold_fact_id") in
                                  set((r.get("meta") or {}).get("evidence_ids") or []) for r in dev_records
                                  if evaluation[r["id"]].meta.get("gold_fact_id")}
        rows[teacher] = {
            "source": source.as_posix(),
            "dev": accuracy_summary(list(dev[teacher].values()), resamples, seed) if dev[teacher] else None,
            "rationalized": any((r.get("meta") or {}).get("rationalized") for r in train_records),
            "rationales": rationale_quality(train_records, train, kind),
        }
    pairs = []
    for a, b in PAIRS:
        if a in dev and b in dev:
            shared = sorted(set(dev[a]) & set(dev[b]))
            if shared:
                test = paired_bootstrap([dev[a][i] for i in shared], [dev[b][i] for i in shared], resamples, seed)
                pair = {"a": a, "b": b, "questions": len(shared), "diff": round(100 * test["difference"], 2),
                        "low": round(100 * test["ci_low"], 2), "high": round(100 * test["ci_high"], 2)}
                if gold_read.get(a):  # where the retriever found the gold fact, and where it did not
                    pair["by_gold_fact_read"] = {
                        str(found): {"questions": len(part), **{t: round(100 * sum(dev[t][i] for i in part) / len(part),
                                                                         2) for t in (a, b)}}
                        for found in (True, False) if (part := [i for i in shared if gold_read[a].get(i) is found])}
                pairs.append(pair)
    return {"teachers": rows, "paired": pairs}


def _markdown(summary: dict) -> str:
    lines = ["# Teachers: their own accuracy and what their rationales carry", "",
             "Generated by `python -m ragdistill.teachers.quality` from the published annotation files. Dev "
             "accuracy is the teacher's own label, answering freely, with a 95% bootstrap interval. The training "
             "columns cover the questions it annotated for students: the share of its rationales whose label is "
             "gold (its accuracy there; for a rationalizing teacher, how often it kept the answer it was given), "
             "the median rationale length in words, and the mean share of the gold fact's content words (longer "
             "than 3 letters) found in its rationale.", ""]
    for dataset, info in summary.items():
        lines += [f"## {dataset}", "", "| teacher | dev accuracy | dev questions | training questions | label is "
                  "gold % | median words | gold-fact overlap |", "|---|---:|---:|---:|---:|---:|---:|"]
        for teacher, row in info["teachers"].items():
            d, q = row["dev"], row["rationales"]
            dev = f"{100 * d['accuracy']:.1f} [{100 * d['ci_low']:.1f}, {100 * d['ci_high']:.1f}]" if d else "–"
            overlap = q.get("gold_fact_overlap")
            name = f"{teacher} (reads the gold fact: not deployable)" if TEACHERS[teacher].oracle else teacher
            lines.append(f"| {name} | {dev} | {d['n'] if d else 0} | {q['n']} | {q.get('gold_label_share', '–')} "
                         f"| {q.get('median_words', '–')} | {'–' if overlap is None else f'{overlap:.2f}'} |")
        for pair in info["paired"]:
            lines += ["", f"{pair['a']} - {pair['b']} on the same {pair['questions']} dev questions: "
                          f"{pair['diff']:+.1f} [{pair['low']:+.1f}, {pair['high']:+.1f}] points (paired bootstrap)."]
            for found, part in pair.get("by_gold_fact_read", {}).items():
                where = "among" if found == "True" else "not among"
                lines.append(f"- gold fact {where} the facts {pair['a']} read ({part['questions']} questions): "
                             f"{pair['a']} {part[pair['a']]:.1f}%, {pair['b']} {part[pair['b']]:.1f}%.")
        lines.append("")
    return "\n".join(lines)


def write_summary(datasets: list[str], out: Path = paths.REPORTS / "teacher" / "summary.json") -> dict:
    teachers = [name for name, spec in TEACHERS.items() if spec.llm]
    summary = {d: teacher_rows(d, teachers) for d in datasets}
    summary = {d: info for d, info in summary.items() if info["teachers"]}
    if not summary:
        raise DataError(f"no published annotations of {', '.join(teachers)} for {', '.join(datasets)} under "
                        f"{paths.annotations(datasets[0], teachers[0]).parent}")
    write_json(out, summary)
    write_text(out.with_suffix(".md"), _markdown(summary))
    log(f"teacher summary written to {out} and {out.with_suffix('.md')}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragdistill.teachers.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)
    try:
        write_summary(args.datasets)
    except (DataError, OSError) as error:
        raise SystemExit(f"teacher quality: {error}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
