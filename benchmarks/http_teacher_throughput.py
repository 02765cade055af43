"""Throughput of the OpenAI-compatible HTTP teacher at several concurrency levels, beside the in-process one.

    .venv/bin/python benchmarks/http_teacher_throughput.py --n 12 --concurrency 1 2 4

Starts a real ``llama_cpp.server`` on 127.0.0.1 serving the teacher GGUF (the same file, threads and
context as the in-process backend), then annotates the first ``--n`` OpenBookQA dev questions (the
pipeline's prompts: instruction, fixed demonstrations, question) through ``OpenAITeacher`` with each
concurrency level, and once more in-process for comparison. No reply cache is used: every request is
real. Writes ``reports/teacher_throughput_http.{md,json}``.

What to expect on one CPU machine: llama-cpp-python's server runs one request at a time, so requests in
flight queue on the server and concurrency buys nothing here; it is meant for servers that batch
requests (vLLM, llama.cpp's own ``llama-server`` with parallel slots) on a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ragdistill import paths, zoo
from ragdistill.config import load_params
from ragdistill.data.registry import load_dataset, resolve_data_root
from ragdistill.io import write_json, write_text
from ragdistill.teachers import DecodingSettings, build_prompt, parse_teacher_output
from ragdistill.teachers.base import Teacher
from ragdistill.teachers.demonstrations import pick_demonstrations
from ragdistill.teachers.llama_cpp import LlamaCppTeacher
from ragdistill.teachers.openai_http import OpenAITeacher
from ragdistill.teachers.server import start_llama_server, stop_server


def measure(teacher: Teacher, prompts: list, questions: list, settings: DecodingSettings) -> dict:
    started = time.perf_counter()
    completions = teacher.complete(prompts, settings)
    seconds = time.perf_counter() - started
    labels = [parse_teacher_output(c.text, q.choices, task="choice")[1] for c, q in zip(completions, questions)]
    output_tokens = sum(c.completion_tokens for c in completions)
    return {"seconds": round(seconds, 2), "examples_per_s": round(len(prompts) / seconds, 3),
            "output_tokens_per_s": round(output_tokens / seconds, 1), "output_tokens": output_tokens,
            "correct": sum(1 for label, q in zip(labels, questions) if label == q.label),
            "unparsed": sum(1 for label in labels if label is None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    params = load_params()
    root = resolve_data_root(params.data.root)
    train = load_dataset("openbookqa", root, "train")
    questions = load_dataset("openbookqa", root, "eval")[: args.n]
    demonstrations = pick_demonstrations("openbookqa", train, params.teacher_model.demonstrations)
    prompts = [build_prompt(q, demonstrations, None, task="choice") for q in questions]
    settings = DecodingSettings(max_new_tokens=params.teacher_model.max_new_tokens)
    threads = params.teacher_model.threads
    model = zoo.qwen_teacher_gguf()
    rows = {}
    with LlamaCppTeacher(str(model), n_threads=threads) as teacher:
        teacher.complete(prompts[:1], settings)  # warm-up: the shared prefix enters the KV cache
        rows["in-process (llama_cpp backend)"] = measure(teacher, prompts, questions, settings)
    log = Path("/tmp/ragdistill-llama-server.log")
    server, base = start_llama_server(model, log, threads=threads)
    try:
        for level in args.concurrency:
            teacher = OpenAITeacher("teacher", base_url=base, api_key_env="RAGDISTILL_BENCH_KEY", concurrency=level)
            teacher.complete(prompts[:1], settings)
            rows[f"HTTP, concurrency {level}"] = measure(teacher, prompts, questions, settings)
            teacher.close()
    finally:
        stop_server(server)
    report = {"n": len(questions), "model": model.name, "threads": threads, "cores": os.cpu_count(),
              "max_new_tokens": settings.max_new_tokens, "rows": rows,
              "command": " ".join([Path(sys.executable).name, *sys.argv])}
    out = paths.REPORTS / "teacher_throughput_http"
    write_json(out.with_suffix(".json"), report)
    lines = ["# Teacher throughput: OpenAI-compatible HTTP server vs in-process", "",
             f"`{report['command']}`: the first {report['n']} OpenBookQA dev questions, teacher `{model.name}`, "
             f"{threads} threads on {report['cores']} cores, greedy, at most {settings.max_new_tokens} new tokens, "
             "no reply cache (every request is real). The server is `llama_cpp.server` (llama-cpp-python) on "
             "127.0.0.1, started by the script; each row first sends one warm-up request.", "",
             "| teacher | examples/s | output tokens/s | seconds | correct | unparsed |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['examples_per_s']:.3f} | {row['output_tokens_per_s']:.1f} | {row['seconds']} "
                     f"| {row['correct']}/{report['n']} | {row['unparsed']} |")
    lines += ["", "llama-cpp-python's server answers one request at a time, so on this CPU machine requests in "
              "flight wait in its queue: concurrency is for servers that batch (vLLM, `llama-server` with "
              "parallel slots), typically on a GPU.", ""]
    write_text(out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
