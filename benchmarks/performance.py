"""Where the time goes, measured side by side on this machine: writes reports/BENCHMARKS.md.

    .venv/bin/python benchmarks/performance.py                     # every part (about 15 min on 2 cores)
    .venv/bin/python benchmarks/performance.py --parts training    # one part; the others' last results stay

Each part compares two things in one run (these machines are noisy, so only ratios measured together are
reported) and saves ``reports/benchmarks/<part>.json``; the report is rebuilt from every saved part.

- ``training``: the pipeline's ``train-sbs`` path (one forward pass over label and rationale rows batched
  by length, ``ragdistill.students.trainer``) against a naive implementation of the same loss (two forward
  passes per step, one per task, on randomly batched padded rows, as the paper's released code does), on
  the published OpenBookQA plain-teacher rationales with SmolLM2-135M; and both against the machine's own
  measured fp32 matrix-multiply rate (6 x parameters FLOPs per trained token).
- ``retrieval``: index build time and queries per second of BM25, dense and hybrid on the open book and
  on corpora 10x and 100x larger, synthesized from it.
- ``pipeline``: a no-op ``dvc repro`` in this workspace (run ``dvc repro`` first), and the stages a
  change of ``teacher`` would rerun (``dvc repro --dry`` with the parameter changed, then restored).
- ``deployment``: latency per question and peak memory of the student against the teacher with and
  without retrieval, each in its own process, on the same OpenBookQA dev questions.

The teacher's own naive-vs-optimized comparison (prefix reuse) and the HTTP concurrency figures come from
``benchmarks/teacher_throughput.py`` and ``benchmarks/http_teacher_throughput.py``; the report quotes
their saved results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ragdistill import paths
from ragdistill.io import read_json, write_json, write_text
from ragdistill.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
OUT = paths.REPORTS / "benchmarks"
PARTS = ("training", "retrieval", "pipeline", "deployment")


def _machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}


def _stamp(part: str, result: dict) -> dict:
    result.update(part=part, machine=_machine(), when=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                  command=" ".join([Path(sys.executable).name, *sys.argv]))
    write_json(OUT / f"{part}.json", result)
    return result


# ----------------------------------------------------------------------------------------------- training

def matmul_rate(seconds: float = 3.0) -> dict:
    """Sustained fp32 GFLOP/s of torch.matmul at a square size and at the student's own shapes."""
    shapes = {"square 2048": (2048, 2048, 2048), "student MLP (8x128 tokens, 576 -> 1536)": (1024, 576, 1536)}
    rates = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b  # warm-up
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
        rates[name] = round(2 * m * k * n * count / (time.perf_counter() - start) / 1e9, 1)
    return rates


def _obqa_sbs_examples(limit: int):
    """OpenBookQA training questions with the published plain-teacher rationales (data/annotations)."""
    from ragdistill.config import load_params
    from ragdistill.data.registry import load_dataset, resolve_data_root
    from ragdistill.io import read_jsonl

    published = {row["id"]: row for row in read_jsonl(ROOT / "data/annotations/openbookqa-plain.jsonl")
                 if row.get("split") == "train" and row.get("rationale")}
    examples = []
    for example in load_dataset("openbookqa", resolve_data_root(load_params().data.root), "train"):
        if example.id in published:
            example.rationale = published[example.id]["rationale"]
            examples.append(example)
    return examples[:limit]


class _TwoPassCollator:
    """The naive batch: a batch of examples becomes two padded batches (label task, rationale task)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id
        self.real_tokens = self.padded_tokens = 0

    def _pad(self, rows: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n], mask[i, :n], labels[i, :n] = (torch.tensor(row["input_ids"]), 1, torch.tensor(row["labels"]))
        self.real_tokens += int(mask.sum())
        self.padded_tokens += ids.numel()
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def __call__(self, pairs: list[dict]) -> dict:
        return {task: self._pad([p[task] for p in pairs]) for task in ("label", "rationale")}


def _naive_trainer_class():
    from transformers import Trainer

    class TwoPassTrainer(Trainer):
        """alpha * loss(label batch) + (1 - alpha) * loss(rationale batch): two forward passes per step."""

        alpha = 0.5

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            label_out = model(**inputs["label"])
            rationale_out = model(**inputs["rationale"])
            loss = self.alpha * label_out.loss + (1 - self.alpha) * rationale_out.loss
            return (loss, label_out) if return_outputs else loss

    return TwoPassTrainer


def _warm_up() -> None:
    """One untimed forward and backward pass, so first-call costs (allocator, thread pool) are not charged
    to whichever implementation runs first."""
    from ragdistill.students.models import load_student

    model = load_student("smollm2-135m-instruct").model
    ids = torch.randint(0, 1000, (8, 128))
    model(input_ids=ids, labels=ids).loss.backward()


def bench_training(examples: int, batch_examples: int) -> dict:
    from datasets import Dataset
    from transformers import TrainingArguments, set_seed

    from ragdistill.config import load_params
    from ragdistill.students.formatting import TaskFormatter, build_task_examples
    from ragdistill.students.models import load_student
    from ragdistill.students.trainer import train_student

    data = _obqa_sbs_examples(examples)
    groups, _ = build_task_examples(data, "sbs", alpha=0.5)
    rows = [row for rows_of_example in groups for row in rows_of_example]
    rates = matmul_rate()
    peak_gflops = max(rates.values())
    result = {"student": "smollm2-135m-instruct", "examples": len(data), "rows": len(rows),
              "batch_rows": 2 * batch_examples, "matmul_gflops": rates}
    scratch = Path(tempfile.mkdtemp(prefix="bench-train-"))
    _warm_up()
    try:
        # Naive first, then ours, each from freshly loaded weights with the same seed and learning rate.
        student = load_student("smollm2-135m-instruct")
        params = sum(p.numel() for p in student.model.parameters())
        settings = load_params()  # the pipeline's own token limits and learning rate
        formatter = TaskFormatter(student.tokenizer, False, settings.student.max_input_tokens,
                                  settings.student.max_target_tokens)
        pairs = [{"label": formatter.encode("label", e.input, e.label, 1.0),
                  "rationale": formatter.encode("rationale", e.input, e.rationale, 1.0)} for e in data]
        collator = _TwoPassCollator(student.tokenizer.pad_token_id)
        set_seed(0)
        args = TrainingArguments(output_dir=str(scratch / "naive"), learning_rate=settings.train.lr,
                                 num_train_epochs=1,
                                 per_device_train_batch_size=batch_examples, seed=0, save_strategy="no",
                                 report_to=[], remove_unused_columns=False, logging_steps=5,
                                 dataloader_num_workers=0)
        trainer = _naive_trainer_class()(model=student.model, args=args, train_dataset=Dataset.from_list(pairs),
                                         data_collator=collator)
        start = time.perf_counter()
        out = trainer.train()
        naive_wall = time.perf_counter() - start
        result["naive"] = {
            "what": "two forward passes per step (label batch, rationale batch), random batches padded to the longest",
            "steps": int(out.global_step), "seconds": round(naive_wall, 1), "real_tokens": collator.real_tokens,
            "padded_tokens": collator.padded_tokens,
            "padding_waste": round(1 - collator.real_tokens / collator.padded_tokens, 4),
            "real_tokens_per_s": round(collator.real_tokens / naive_wall, 1),
            "final_loss": round(float(out.training_loss), 4)}
        del trainer, student

        # Ours three ways: the pipeline's paired batching with logits only where a target is predicted, the same
        # with logits at every position (isolates the logit mask), and rows batching (each task row on its own,
        # grouped by length) with the same rows per step.
        variants = (("ours_all_logits", "paired", False), ("ours", "paired", True), ("ours_rows", "rows", True))
        for name, batching, at_targets in variants:
            student = load_student("smollm2-135m-instruct")
            stats = train_student(student, groups, scratch / name, lr=settings.train.lr, epochs=1.0,
                                  batch_size=batch_examples if batching == "paired" else 2 * batch_examples,
                                  batching=batching, seed=0, checkpoint_dir=scratch / f"{name}-checkpoints",
                                  save_steps=10_000, logits_at_targets=at_targets)
            result[name] = {
                "what": (("both task rows of each example in one padded batch (paired, train-sbs)" if batching ==
                          "paired" else "task rows batched by length, each on its own (rows)")
                         + ", one forward pass per step, vocabulary "
                         + ("logits only at target positions" if at_targets else "logits at every position")),
                "steps": stats["steps"], "seconds": stats["train_seconds"], "real_tokens": stats["real_tokens_seen"],
                "padded_tokens": stats["padded_tokens_seen"], "padding_waste": stats["padding_waste"],
                "real_tokens_per_s": stats["real_tokens_per_second"], "final_loss": stats["final_loss"]}
            del student
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    flops_per_token = 6 * params
    result["params"] = params
    result["flops_per_token"] = flops_per_token
    for name in ("naive", "ours_all_logits", "ours", "ours_rows"):
        side = result[name]
        side["achieved_gflops"] = round(side["real_tokens_per_s"] * flops_per_token / 1e9, 1)
        side["share_of_matmul_rate"] = round(side["achieved_gflops"] / peak_gflops, 3)
        # The ceiling if every FLOP ran at the matmul rate: tokens/s = rate / (6 N).
    result["tokens_per_s_ceiling"] = round(peak_gflops * 1e9 / flops_per_token, 1)
    result["speedup"] = round(result["ours"]["real_tokens_per_s"] / result["naive"]["real_tokens_per_s"], 2)
    result["speedup_all_logits"] = round(
        result["ours_all_logits"]["real_tokens_per_s"] / result["naive"]["real_tokens_per_s"], 2)
    return result


# ---------------------------------------------------------------------------------------------- retrieval

def synthesize_corpus(passages: list, scale: int, seed: int = 0) -> list:
    """``scale`` times as many passages: the originals, then new ones each made of the first half of one
    fact and the second half of another (so lengths and vocabulary stay those of the open book)."""
    from ragdistill.data.corpora import Passage

    rng = random.Random(seed)
    words = [p.text.split() for p in passages]
    out = list(passages)
    for copy in range(1, scale):
        for i, first in enumerate(words):
            second = words[rng.randrange(len(words))]
            text = " ".join(first[: max(1, len(first) // 2)] + second[len(second) // 2:])
            out.append(Passage(id=f"synth-{copy}-{i}", text=text))
    return out


def bench_retrieval(scales: list[int], queries: int, dense_scale_limit: int) -> dict:
    """Per scale: BM25, dense and hybrid (the fusion of the two fitted ones, so its build is their sum).
    Above ``dense_scale_limit`` the dense build time is extrapolated from the encoding rate measured at the
    largest measured scale (encoding is linear in the passages); its search is still measured for real, on
    an index of the full size made of the measured embeddings tiled and slightly perturbed."""
    from ragdistill.config import load_params
    from ragdistill.data.corpora import load_openbook
    from ragdistill.data.registry import load_dataset, resolve_data_root
    from ragdistill.retrieval import BM25Retriever, DenseRetriever, HybridRetriever
    from ragdistill.retrieval.run import question_and_choices

    class Precomputed(DenseRetriever):
        embeddings: np.ndarray

        def _fit(self, passages: list) -> None:
            self._embeddings = self.embeddings

    class Prefitted(HybridRetriever):
        def _fit(self, passages: list) -> None:  # its two retrievers are fitted already
            pass

    root = resolve_data_root(load_params().data.root)
    book = load_openbook(root)
    questions = [question_and_choices(e) for e in load_dataset("openbookqa", root, "eval")[:queries]]
    encoder = DenseRetriever()  # one loaded model, shared, so model load time is not counted as index build
    encoder.encode(["warm up"])
    rows, rate = [], None  # rate: measured dense encoding seconds per passage

    def timed(retriever, build_s: float | None, method: str, scale: int, corpus: list, how: str) -> None:
        if build_s is None:
            start = time.perf_counter()
            retriever.fit(corpus)
            build_s = time.perf_counter() - start
        start = time.perf_counter()
        retriever.search(questions, 3)
        search = time.perf_counter() - start
        rows.append({"method": method, "scale": scale, "passages": len(corpus), "build_s": round(build_s, 2),
                     "queries": len(questions), "queries_per_s": round(len(questions) / search, 1), "measured": how})
        print(rows[-1], flush=True)

    for scale in scales:
        corpus = synthesize_corpus(book, scale)
        bm25 = BM25Retriever()
        timed(bm25, None, "bm25", scale, corpus, "yes")
        if scale <= dense_scale_limit:
            dense = DenseRetriever()
            dense._model = encoder.model
            timed(dense, None, "dense", scale, corpus, "yes")
            rate = rows[-1]["build_s"] / len(corpus)
            how = "yes"
        else:
            if rate is None:
                raise SystemExit("retrieval: measure at least one scale at or below --dense-scale-limit")
            sample = encoder.encode([p.text for p in corpus[:2000]])  # real embeddings to tile
            tiled = np.tile(sample, (-(-len(corpus) // len(sample)), 1))[: len(corpus)]
            tiled += np.random.default_rng(0).normal(0, 0.01, tiled.shape).astype(np.float32)
            tiled /= np.linalg.norm(tiled, axis=1, keepdims=True)
            dense = Precomputed()
            dense._model, dense.embeddings = encoder.model, tiled
            dense.fit(corpus)
            how = "search yes; build extrapolated from the measured encoding rate"
            timed(dense, rate * len(corpus), "dense", scale, corpus, how)
        hybrid = Prefitted(bm25=bm25, dense=dense)
        hybrid.fit(corpus)
        build = sum(r["build_s"] for r in rows[-2:])
        timed(hybrid, build, "hybrid", scale, corpus, how if how != "yes" else "yes (build: bm25 + dense)")
    return {"queries": queries, "corpus": "OpenBookQA open book (1,326 facts); larger ones synthesized from it",
            "dense_model": "all-MiniLM-L6-v2", "rows": rows}


# ----------------------------------------------------------------------------------------------- pipeline

def _dvc(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(["dvc", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout + done.stderr


def _stages(output: str) -> list[str]:
    return sorted({line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")})


def _downstream(changed: set[str]) -> list[str]:
    """``changed`` and every stage that depends on one of them, from ``dvc dag --dot``."""
    _, dot = _dvc("dag", "--dot")
    edges = [tuple(part.strip().strip('";') for part in line.split("->")) for line in dot.splitlines() if "->" in line]
    found, grew = set(changed), True
    while grew:
        new = {b for a, b in edges if a in found and b not in found}
        found |= new
        grew = bool(new)
    return sorted(found)


def bench_pipeline(repeats: int) -> dict:
    """No-op ``dvc repro`` timings, then which stages a parameter change reruns: the stages ``dvc status``
    reports changed, and everything downstream of them (``dvc repro --dry`` cannot be used: it stops at the
    first stage whose inputs do not exist yet)."""
    import yaml

    seconds, output = zip(*(_dvc("repro") for _ in range(repeats)))
    ran = sorted(set().union(*(_stages(o) for o in output)))
    params_file = ROOT / "params.yaml"
    original = params_file.read_text()
    current = yaml.safe_load(original)["teacher"]
    other = "plain" if current != "plain" else "rag"
    changed = {}
    try:
        for key, old, new in (("teacher", f"teacher: {current}", f"teacher: {other}"),
                              ("train.alpha", "alpha: 0.5", "alpha: 0.3")):
            if old not in original:
                continue
            params_file.write_text(original.replace(old, new, 1))
            status = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True, cwd=ROOT).stdout
            changed[f"{key}: {old.split(': ')[1]} -> {new.split(': ')[1]}"] = _downstream(set(json.loads(status)))
            params_file.write_text(original)
    finally:
        params_file.write_text(original)
    _, dot = _dvc("dag", "--dot")
    stages = [line.strip().strip('";') for line in dot.splitlines() if line.strip().endswith('";')
              and "->" not in line]
    return {"noop_repro_s": [round(s, 2) for s in seconds], "noop_repro_stages_run": ran,
            "all_stages": len(stages), "rerun_after_change": changed,
            "datasets": yaml.safe_load(original)["datasets"]}


# --------------------------------------------------------------------------------------------- deployment

def bench_deployment(n: int, student_dir: str | None) -> dict:
    """The student against both teachers, timed as ``python -m ragdistill.study deploy`` times them."""
    from ragdistill.study.deployment import deploy

    with tempfile.TemporaryDirectory() as scratch:
        measured = read_json(deploy("openbookqa", n, student_dir, Path(scratch),
                                    shapes=("student", "teacher: plain", "teacher: rag")))["shapes"]
    sides = {"student": measured["student"], "teacher-plain": measured["teacher: plain"],
             "teacher-rag": measured["teacher: rag"]}
    student = sides["student"]
    ratios = {kind: {"latency": round(sides[kind]["latency_s"] / student["latency_s"], 1),
                     "peak_memory": round(sides[kind]["peak_rss_mb"] / student["peak_rss_mb"], 2),
                     "params": round(sides[kind]["params"] / student["params"], 1)}
              for kind in ("teacher-plain", "teacher-rag")}
    return {"dataset": "openbookqa (dev)", "sides": sides, "teacher_over_student": ratios}


# ------------------------------------------------------------------------------------------------- report

def _model_name(model: str) -> str:
    """A trained student folder by its last three parts (models/<dataset>/<method>), other names as given."""
    parts = Path(model).parts
    return "/".join(parts[-3:]) if len(parts) > 3 else model


def _http_summary(report: dict) -> str:
    """One clause per server: examples per second at each number of requests in flight, and the in-process rate."""
    rows, by_server = report["rows"], {}
    for name, row in rows.items():
        if name.endswith(" in flight"):
            server, level = name.rsplit(", ", 1)
            by_server.setdefault(server, []).append((int(level.split()[0]), row["examples_per_s"]))
    clauses = [f"`{server}` " + ", ".join(f"{rate:.3f} at {level}" for level, rate in sorted(levels))
               for server, levels in by_server.items()]
    inside = next((row["examples_per_s"] for name, row in rows.items() if name.startswith("in-process")), None)
    return "; ".join(clauses) + (f"; in-process {inside:.3f}." if inside is not None else ".")


def _teacher_words(side: dict) -> str:
    found = side.get("retrieval")
    if not found:  # measured before the sides recorded their retrieval, with the prompts of then
        return "(greedy, llama.cpp, 2 threads), the RAG teacher after dense retrieval of 3 open-book facts"
    return (f"(greedy, {side['backend']}), with the pipeline's prompts and demonstrations, the RAG teacher after "
            f"{found['method']} retrieval of {found['k']} {found['corpus']} passage{'s' * (found['k'] > 1)}")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render() -> str:
    parts = {p: read_json(OUT / f"{p}.json") for p in PARTS if (OUT / f"{p}.json").exists()}
    out = ["# Benchmarks: where the time goes on this machine", "",
           "Generated by `benchmarks/performance.py` from `reports/benchmarks/*.json`. Every comparison below was "
           "measured within one run of its part (the machine is shared and noisy, so only ratios measured together "
           "are meaningful). Rerun one part with `.venv/bin/python benchmarks/performance.py --parts <part>`.", ""]
    if "training" in parts:
        t = parts["training"]
        naive, ours = t["naive"], t["ours"]
        out += ["## Training (`train-sbs`)", "",
                f"{t['when']}, {t['machine']['cpu']}, {t['machine']['torch_threads']} torch threads. Student "
                f"SmolLM2-135M ({t['params'] / 1e6:.1f} M parameters, fp32), {t['examples']} OpenBookQA training "
                "questions "
                f"with the published plain-teacher rationales ({t['rows']} label + rationale rows), one epoch, "
                f"{t['batch_rows']} rows per optimizer step in both implementations, lr 1e-4, seed 0.", "",
                "Measured matrix-multiply rate (torch fp32): " + ", ".join(f"{k}: {v} GFLOP/s" for k, v in
                                                                          t["matmul_gflops"].items()) +
                f". At 6 x {t['params'] / 1e6:.0f} M FLOPs per trained token, the best of these caps training at "
                f"**{t['tokens_per_s_ceiling']} tokens/s**.", "",
                _table(["implementation", "steps", "seconds", "real tokens", "padding waste", "real tokens/s",
                        "GFLOP/s", "share of matmul rate", "final loss"],
                       [[name, s["steps"], s["seconds"], s["real_tokens"], f"{s['padding_waste']:.1%}",
                         s["real_tokens_per_s"], s["achieved_gflops"], f"{s['share_of_matmul_rate']:.0%}",
                         s["final_loss"]]
                        for name, s in [("naive: " + naive["what"], naive)]
                        + ([("ours, all logits: " + t["ours_all_logits"]["what"], t["ours_all_logits"])]
                           if "ours_all_logits" in t else [])
                        + [("ours: " + ours["what"], ours)]
                        + ([("ours, rows: " + t["ours_rows"]["what"], t["ours_rows"])] if "ours_rows" in t else [])]),
                "", f"**Speed-up of ours over naive: {t['speedup']}x** real tokens per second (goal: at least 1.3x; "
                f"padding waste goal: under 10%, ours {ours['padding_waste']:.1%})."
                + (f" With vocabulary logits at every position (length grouping and one pass only) it is "
                   f"{t['speedup_all_logits']}x: the prompt's logits never enter the loss, and the vocabulary "
                   "projection is a fifth of this model's FLOPs."
                   if "speedup_all_logits" in t else ""), "",
                "All minimise alpha * label loss + (1 - alpha) * rationale loss (alpha 0.5). The naive one and ours "
                "(paired) average each task's tokens over the batch, the paper's loss exactly, ours in one forward "
                "pass; rows averages each row's tokens and weights rows by task, the same objective in expectation. "
                "The loss curves are not the point here; tokens per second are.", "",
                "Padding depends on the data size: the `Trainer`'s length-grouped sampler sorts rows by length only "
                "within megabatches of min(rows // (4 x batch), 50) batches, here "
                f"{min(t['rows'] // (4 * t['batch_rows']), 50) * t['batch_rows']} rows. In the pipeline's own runs "
                "(`reports/RESULTS.md`: 1,600 rows on SVAMP, 1,948 on CQA) the same code wastes 1.4% and 1.0% on "
                "padding at 145 and 144 real tokens/s (before logits at targets); `--examples 800` measures at that "
                "size (about 35 minutes here). With few rows the megabatches are small: at 48 questions (96 rows, "
                "megabatches of 24) ours wasted 13% on padding.", "",
                "The GFLOP/s column counts 6 x parameters FLOPs per real token for every implementation, so for "
                "ours it is an effective rate: it skips the vocabulary projection at prompt positions.", ""]
    teacher = paths.REPORTS / "teacher_throughput.json"
    http = paths.REPORTS / "teacher_throughput_http.json"
    if teacher.exists():
        out += ["## Teacher (`annotate-teacher`)", "",
                "From `benchmarks/teacher_throughput.py` (`reports/teacher_throughput.md`): the naive loop clears "
                "llama.cpp's key-value cache before every prompt; the pipeline's teacher keeps the shared prefix "
                "(instruction and demonstrations) and evaluates only each question."]
        saved = read_json(teacher)
        runs = saved["runs"]
        out += ["", f"{saved['date']}, {saved['n_threads']} threads, {len(saved['questions'])} OpenBookQA dev "
                "questions.", "",
                _table(["KV cache", "examples/s"], [["cleared before each prompt (naive)",
                                                    runs["reset"]["examples_per_s"]],
                                                   ["prefix reused (pipeline)", runs["reuse"]["examples_per_s"]]]),
                "", f"**Speed-up from prefix reuse: "
                f"{runs['reuse']['examples_per_s'] / runs['reset']['examples_per_s']:.2f}x** examples per second "
                "(goal: at least 1.5x)."]
        if http.exists():
            out += ["", "HTTP backend (`benchmarks/http_teacher_throughput.py`, `reports/teacher_throughput_http.md`), "
                    f"examples per second by requests in flight: {_http_summary(json.loads(http.read_text()))}"]
        out += [""]
    if "retrieval" in parts:
        r = parts["retrieval"]
        out += ["## Retrieval", "", f"{r['when']}. {r['corpus']}; {r['queries']} OpenBookQA dev questions as queries "
                f"(question and choices), top 3. Dense: {r['dense_model']} on CPU, batch 64.", "",
                _table(["method", "scale", "passages", "index build s", "queries/s", "measured"],
                       [[x["method"], f"{x['scale']}x", f"{x['passages']:,}", x["build_s"], x["queries_per_s"],
                         x["measured"]] for x in r["rows"]]), "",
                "BM25 (rank-bm25) scores every passage for every query term in Python/numpy, so its queries per second "
                "fall roughly in proportion to the corpus; dense search is one matrix product and stays fast, but its "
                "index build (encoding every passage) grows linearly and dominates. In the pipeline the `retrieve` "
                "stage's output is versioned by DVC, so the build is paid again only when the corpus, the retriever "
                "or the questions change.", ""]
    if "pipeline" in parts:
        p = parts["pipeline"]
        out += ["## Pipeline", "", f"{p['when']}, in the main workspace after `dvc repro` (datasets {p['datasets']}, "
                f"{p['all_stages']} stages).", "",
                f"No-op `dvc repro`: {', '.join(f'{s} s' for s in p['noop_repro_s'])} (goal: under 5 s); stages run: "
                f"{p['noop_repro_stages_run'] or 'none'}.", ""]
        for change, stages in p["rerun_after_change"].items():
            out += [f"After `{change}`, `dvc repro` reruns {len(stages)} of {p['all_stages']} stages (those "
                    "`dvc status` reports changed, and everything downstream of them in `dvc dag`): "
                    + ", ".join(f"`{s}`" for s in stages) + ".", ""]
        out += ["These lists come from `dvc status` and `dvc dag`, before anything runs, so they are upper bounds. "
                "After a change of `teacher`, DVC skips at run time the finetune student's stages "
                "(`train-baseline@*-finetune`, `evaluate@*-finetune`, `cost@*-finetune`): `split` writes their inputs, "
                "`train-finetune.jsonl` and `eval.jsonl`, without teacher outputs, so they come out byte-identical. "
                "`tests/test_dag.py::test_rag_teacher_experiment` checks this on a real `dvc exp run -S teacher=plain` "
                "after `-S teacher=rag`.", ""]
    if "deployment" in parts:
        d = parts["deployment"]
        s = d["sides"]
        out += ["## Deployment: the student against the teacher", "",
                f"{d['when']}. {d['dataset']}, {s['student']['questions']} questions one at a time after one warm-up, "
                "each side in its own process (peak memory is that process's maximum resident set). The student "
                "answers by scoring the four choices under its label task (as evaluation does); the teacher writes a "
                f"rationale and a label {_teacher_words(s.get('teacher-rag', {}))}.", "",
                _table(["model", "parameters", "latency s/question (mean)", "p50", "peak memory MB"],
                       [[f"{k}: {_model_name(v['model'])}", f"{v['params'] / 1e6:.0f} M", v["latency_s"],
                         v["latency_p50_s"], v["peak_rss_mb"]] for k, v in s.items()]), ""]
        for kind, ratio in d["teacher_over_student"].items():
            out += [f"**{kind} / student: {ratio['latency']}x the latency, {ratio['peak_memory']}x the peak memory, "
                    f"{ratio['params']}x the parameters.**", ""]
        if "retrieval_s" in s.get("teacher-rag", {}):
            out += [f"Retrieval's share of the RAG teacher's latency: {s['teacher-rag']['retrieval_s']} s per "
                    "question.", ""]
    if torch.cuda.is_available() or (OUT / "gpu.json").exists():
        out += ["## GPU", "", "See `reports/benchmarks/gpu.json`.", ""]
    else:
        out += ["## GPU", "", "These benchmarks ran without a GPU; the CUDA path is measured by "
                "`benchmarks/cuda_check.py` on a GPU machine (`reports/benchmarks/cuda.md`).", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--examples", type=int, default=48, help="training: OpenBookQA questions (2 rows each)")
    parser.add_argument("--batch-examples", type=int, default=4, help="training: questions per optimizer step")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100], help="retrieval: corpus sizes")
    parser.add_argument("--dense-scale-limit", type=int, default=10,
                        help="retrieval: above this scale the dense build time is extrapolated (see the report)")
    parser.add_argument("--queries", type=int, default=200, help="retrieval: number of queries")
    parser.add_argument("--repeats", type=int, default=3, help="pipeline: no-op dvc repro runs")
    parser.add_argument("--questions", type=int, default=16, help="deployment: timed questions per side")
    parser.add_argument("--student", default=None, help="deployment: a trained student folder (default: "
                        "models/openbookqa/sbs if present, else the base student; latency does not depend on weights)")
    parser.add_argument("--render-only", action="store_true", help="rebuild BENCHMARKS.md from the saved parts")
    args = parser.parse_args()
    os.chdir(ROOT)  # the pipeline's paths are relative to the repository root
    if not args.render_only:
        for part in args.parts:
            print(f"== {part}", flush=True)
            if part == "training":
                _stamp(part, bench_training(args.examples, args.batch_examples))
            elif part == "retrieval":
                _stamp(part, bench_retrieval(args.scales, args.queries, args.dense_scale_limit))
            elif part == "pipeline":
                _stamp(part, bench_pipeline(args.repeats))
            elif part == "deployment":
                student = args.student
                if student is None and (ROOT / "models/openbookqa/sbs/config.json").exists():
                    student = str(ROOT / "models/openbookqa/sbs")
                _stamp(part, bench_deployment(args.questions, student))
    write_text(paths.REPORTS / "BENCHMARKS.md", render())
    print(render())


if __name__ == "__main__":
    main()
