"""Stage annotate-teacher: a rationale and a label for the examples students learn from.

- ``gold_fact``: a positive control, no model runs: each training question's gold fact (OpenBookQA,
  StrategyQA) is its rationale and the gold label its label, so that sbs shows what a surely right
  rationale gives this student.
- ``palm`` / ``none``: no model runs. The published PaLM outputs stay where the dataset keeps them
  (``data/prepared``; they are the dataset's files, not ours to republish), so the annotation file
  only records, per example, where its teacher output comes from.
- ``oracle``: the LLM teacher reading each evaluation question's gold fact in place of retrieval, in the
  RAG prompt: the ceiling of what retrieval could give, not a teacher one can deploy. It answers the
  evaluation questions only, so no student learns from it (``split`` says so).
- ``plain`` / ``rag``: the LLM teacher answers the training examples that ``split`` will choose (the
  same fraction and seed) and the evaluation examples (its own accuracy), without and with retrieved
  evidence. Replies go to a cache keyed by (model, prompt, decoding settings) as they arrive, so a killed
  run resumes where it stopped and never asks twice; a changed fraction reuses every answer it has. Every
  50 replies the published file is rewritten with what is answered so far, so that a long run's progress
  can be committed and resumed on another machine.
"""

from __future__ import annotations

import statistics
import time

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import Example, gold_fact_evidence, gold_facts, load_examples
from ragdistill.data.registry import task_kind
from ragdistill.data.split import choose_training
from ragdistill.evaluation.metrics import accuracy_summary, is_correct
from ragdistill.io import read_json, read_jsonl, write_json, write_jsonl
from ragdistill.log import log
from ragdistill.memory import peak_rss_mb
from ragdistill.registry import TEACHERS
from ragdistill.teachers.annotate import annotate
from ragdistill.teachers.base import DecodingSettings, LazyTeacher
from ragdistill.teachers.cache import AnnotationCache, seed_from_annotations
from ragdistill.teachers.demonstrations import pick_demonstrations

# What each teacher model took to serve, remembered from the last run that loaded it.
FOOTPRINTS = paths.TEACHER_CACHE / "footprints.json"


def teacher_kwargs(params: Params) -> dict:
    model = params.teacher_model
    if model.backend == "llama_cpp":
        return {"model": model.model, "n_threads": model.threads}
    if model.backend == "openai":
        return {"model": model.model, "base_url": model.base_url, "api_key_env": model.api_key_env,
                "concurrency": model.concurrency}
    return {"model": model.model}


def annotation_record(example: Example, split: str) -> dict:
    return {"id": example.id, "split": split, "rationale": example.rationale, "teacher_label": example.teacher_label,
            "meta": {k: v for k, v in example.meta.items() if k not in ("facts", "decomposition", "gold_fact")}}


def teacher_cost(answered: list[Example], footprint: dict, retrieval_dataset: str | None) -> dict:
    """Deployment cost of the teacher on this machine: seconds per question as each reply was measured
    (cached replies keep the latency of the run that asked them), plus the retriever's share for a RAG
    teacher, its size, and the peak memory of the process that ran it (from the run that loaded it)."""
    generation = statistics.fmean(e.meta.get("seconds", 0.0) for e in answered) if answered else None
    retrieval = None
    if retrieval_dataset is not None:
        retrieval = read_json(paths.REPORTS / "retrieval" / f"{retrieval_dataset}.json").get("seconds_per_query")
    latency = None if generation is None else generation + (retrieval or 0.0)
    return {"latency_s": latency, "generation_s": generation, "retrieval_s": retrieval, **footprint}


def _footprint_key(params: Params) -> str:
    return f"{params.teacher_model.backend}:{params.teacher_model.model}"


def _footprints() -> dict:
    return read_json(FOOTPRINTS) if FOOTPRINTS.exists() else {}


def remember_footprint(params: Params, footprint: dict) -> dict:
    """Add this process's peak memory to a loaded teacher's footprint and remember it for later runs whose
    replies are all cached (they never load the model)."""
    footprint = {**footprint, "peak_rss_mb": peak_rss_mb()}
    write_json(FOOTPRINTS, {**_footprints(), _footprint_key(params): footprint})
    return footprint


def _gold_fact_control(dataset: str, train: list[Example], out) -> dict:
    """Annotations of the gold-fact control for every training question (cheap, so any fraction is covered)."""
    rows = []
    for example in train:
        facts = gold_facts(example)
        rows.append({"id": example.id, "split": "train", "rationale": " ".join(facts) or None,
                     "teacher_label": example.label, "meta": {"source": "gold_fact"}})
    covered = sum(1 for row in rows if row["rationale"])
    if not covered:
        raise SystemExit(f"annotate-teacher: teacher gold_fact needs gold facts, and no {dataset} training question "
                         "has one (OpenBookQA and StrategyQA do); choose another teacher in params.yaml")
    write_jsonl(out, rows)
    report = {"dataset": dataset, "teacher": "gold_fact", "train": len(rows), "with_fact": covered, "eval": None}
    write_json(paths.teacher_report(dataset, "gold_fact"), report)
    log(f"{dataset}: gold-fact control: {covered} of {len(rows)} training questions have a gold fact")
    return report


def run(params: Params, dataset: str) -> dict:
    started = time.perf_counter()
    teacher = params.teacher
    train = load_examples(paths.prepared(dataset, "train"))
    evaluation = load_examples(paths.prepared(dataset, "eval"))
    out = paths.annotations(dataset, teacher)
    if teacher == "gold_fact":
        return _gold_fact_control(dataset, train, out)
    if teacher in ("none", "palm"):
        rows = [{"id": e.id, "split": s, "source": "data/prepared" if teacher == "palm" else None}
                for s, examples in (("train", train), ("eval", evaluation)) for e in examples]
        write_jsonl(out, rows)
        report = {"dataset": dataset, "teacher": teacher}
        if teacher == "palm":
            prepared = read_json(paths.PREPARED / dataset / "summary.json")
            report["eval"] = prepared.get("eval", {}).get("teacher_accuracy")
        write_json(paths.teacher_report(dataset, teacher), report)
        log(f"{dataset}: teacher {teacher}: no model to run")
        return report

    # The students' training examples; validation is scored on gold labels, so it needs no teacher output.
    chosen, _ = choose_training(train, params.fraction(dataset), params.split.valid_size, params.split.seed,
                                held_out=params.split.teacher_selection)
    model = params.teacher_model
    scored = evaluation[: model.eval_examples] if model.eval_examples else evaluation
    spec = TEACHERS[teacher]
    evidence = None
    if spec.oracle:
        chosen = []
        evidence = gold_fact_evidence(scored)
        if not evidence:
            raise SystemExit(f"annotate-teacher: teacher oracle reads each question's gold fact, and no {dataset} "
                             "evaluation question has one (OpenBookQA and StrategyQA do); choose another teacher "
                             "in params.yaml")
    elif spec.retrieval:
        evidence = {row["id"]: row["passages"] for row in read_jsonl(paths.retrieved(dataset))}
    demonstrations = pick_demonstrations(dataset, train, model.demonstrations, evidence)
    # Rationalization explains the gold answer of the questions students learn from; the evaluation
    # questions are answered freely, so the report's accuracy is the teacher's own.
    hinted = {e.id for e in chosen} if spec.rationalize else set()
    settings = DecodingSettings(max_new_tokens=model.max_new_tokens)
    cache = AnnotationCache(paths.TEACHER_CACHE / f"{dataset}.jsonl")
    if out.exists():  # published annotations (dvc.yaml keeps them with `persist`): reuse their replies
        seeded = seed_from_annotations(cache, read_jsonl(out))
        if seeded:
            log(f"{dataset}: {seeded} teacher replies taken from the published {out}")
    log(f"{dataset}: teacher {teacher} ({model.backend} {model.model}) on {len(chosen)} training "
        f"and {len(scored)} evaluation examples; {len(cache)} replies cached")
    known = _footprints().get(_footprint_key(params))
    training_ids = {e.id for e in chosen}

    def publish(done: list[Example]) -> None:
        # Progress kept where git can keep it: a partial file is reused by the next run, and split refuses it.
        write_jsonl(out, [annotation_record(e, "train" if e.id in training_ids else "eval") for e in done])

    with LazyTeacher(model.backend, footprint_store=known, **teacher_kwargs(params)) as llm:
        # The evaluation questions first: a part-way annotation already scores the teacher on them.
        annotated, stats = annotate(scored + chosen, llm, settings, demonstrations, evidence, cache,
                                    batch_size=max(8, model.concurrency), label_policy=model.label_policy,
                                    publish=publish, hint_ids=hinted)
        footprint = llm.footprint()
        if llm.loaded:
            footprint = remember_footprint(params, footprint)
        else:
            log(f"{dataset}: every reply was cached or published; the teacher model was not loaded")
    publish(annotated)
    kind = task_kind(dataset)
    eval_part, train_part = annotated[:len(scored)], annotated[len(scored):]
    # The teacher is scored on its own label, also where gold_if_wrong replaced it for the students.
    correct = [is_correct(e.meta.get("teacher_label_raw", e.teacher_label), e.label, kind) for e in eval_part]
    report = {"dataset": dataset, "teacher": teacher, "backend": model.backend, "model": model.model,
              "retrieval": {"method": params.retrieval.method, "k": params.retrieval.k} if spec.retrieval else None,
              "rationalize": spec.rationalize,
              **({"oracle": {"with_gold_fact": len(evidence), "of": len(scored)}} if spec.oracle else {}),
              "eval": accuracy_summary(correct, params.eval.bootstrap, params.eval.seed) if correct else None,
              "unparsed": {"train": sum(1 for e in train_part if e.teacher_label is None),
                           "eval": sum(1 for e in eval_part if e.teacher_label is None)},
              "stats": stats.to_dict(),
              "cost": teacher_cost(eval_part, footprint, dataset if spec.retrieval else None),
              "seconds": round(time.perf_counter() - started, 1)}
    write_json(paths.teacher_report(dataset, teacher), report)
    if report["eval"]:
        log(f"{dataset}: teacher {teacher} accuracy {report['eval']['accuracy']:.1%} on {len(eval_part)} questions")
    return report
