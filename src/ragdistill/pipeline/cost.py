"""Stage cost: the deployment cost of a trained student on this machine: parameters, weights on disk, memory, and the
latency of answering one question at a time (batch 1, the label task only, as evaluation scores it)."""

from __future__ import annotations

import contextlib
import io
import statistics
import time

import torch

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import load_examples
from ragdistill.evaluation.scoring import answer_labels, scoring_mode
from ragdistill.io import write_json
from ragdistill.log import log
from ragdistill.memory import peak_rss_mb, rss_mb
from ragdistill.students.formatting import TaskFormatter
from ragdistill.students.models import load_student


def run(params: Params, dataset: str, method: str) -> dict:
    """Time the student on the first ``cost.examples`` evaluation questions, one at a time, after one
    untimed warm-up question; write ``reports/cost/<dataset>-<method>.json``."""
    model_dir = paths.model_dir(dataset, method)
    examples = load_examples(paths.split_file(dataset, "eval"))[: params.cost.examples + 1]
    if len(examples) < 2:
        raise ValueError(f"{paths.split_file(dataset, 'eval')}: need at least 2 evaluation examples to time")
    before = rss_mb()
    started = time.perf_counter()
    student = load_student(str(model_dir))
    load_seconds = time.perf_counter() - started
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder,
                              params.student.max_input_tokens, params.student.max_target_tokens)
    scoring = scoring_mode(params.eval.scoring, dataset)

    def answer(example) -> None:
        with contextlib.redirect_stderr(io.StringIO()):  # no progress bar per single question
            answer_labels(student, [example], formatter, scoring, params.eval.max_new_tokens, batch_size=1)

    answer(examples[0])  # warm-up: first-call allocations are not what a served model pays
    latencies = []
    for example in examples[1:]:
        tick = time.perf_counter()
        answer(example)
        latencies.append(time.perf_counter() - tick)
    weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) or sum(
        f.stat().st_size for f in model_dir.glob("*.bin"))
    result = {
        "dataset": dataset, "method": method, "scoring": scoring, "timed_examples": len(latencies),
        "params": sum(p.numel() for p in student.model.parameters()),
        "weights_bytes": weights,
        "load_seconds": round(load_seconds, 2),
        "latency_s": round(statistics.fmean(latencies), 4),
        "latency_p50_s": round(statistics.median(latencies), 4),
        "latency_p90_s": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 4),
        "model_rss_mb": round(rss_mb() - before, 1),
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
    }
    write_json(paths.REPORTS / "cost" / f"{dataset}-{method}.json", result)
    log(f"{dataset}/{method}: {result['latency_s'] * 1000:.0f} ms per question at batch 1, "
        f"{result['params'] / 1e6:.0f}M parameters, peak memory {result['peak_rss_mb']:.0f} MB")
    return result
