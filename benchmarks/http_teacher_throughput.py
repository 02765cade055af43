"""Throughput of the OpenAI-compatible HTTP teacher at several concurrency levels, beside the in-process one.

    .venv/bin/python benchmarks/http_teacher_throughput.py --n 16 --concurrency 1 2 4 8 \
        --llama-server "$(scripts/build-llama-server.sh .venv/bin/pip)"

Starts real servers on 127.0.0.1 serving the teacher GGUF (the same file, threads and context as the
in-process backend): ``llama_cpp.server`` (llama-cpp-python's, which answers one request at a time) and, with
``--llama-server``, llama.cpp's own ``llama-server`` with as many parallel slots as the highest concurrency,
which decodes the requests in flight together in one batch. Then it annotates the first ``--n`` OpenBookQA dev
questions (the pipeline's prompts: instruction, fixed demonstrations, question) through ``OpenAITeacher`` at
each concurrency level, and once in-process. No reply cache is used: every request is real. Writes
``reports/teacher_throughput_http.{md,json}``.
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
from ragdistill.teachers.server import start_batching_server, start_llama_server, stop_server


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
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--llama-server", help="llama.cpp's llama-server binary (scripts/build-llama-server.sh)")
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
    servers = {"llama_cpp.server": lambda log: start_llama_server(model, log, threads=threads)}
    if args.llama_server:
        servers[f"llama-server, {max(args.concurrency)} slots"] = lambda log: start_batching_server(
            args.llama_server, model, log, parallel=max(args.concurrency), threads=threads)
    for name, start in servers.items():
        server, base = start(Path(f"/tmp/ragdistill-{name.split(',')[0]}.log"))
        try:
            for level in args.concurrency:
                teacher = OpenAITeacher("teacher", base_url=base, api_key_env="RAGDISTILL_BENCH_KEY",
                                        concurrency=level)
                teacher.complete(prompts[:level], settings)  # warm-up: every slot has seen the shared prefix
                rows[f"{name}, {level} in flight"] = measure(teacher, prompts, questions, settings)
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
             "no reply cache (every request is real). Servers on 127.0.0.1, started by the script: "
             "`llama_cpp.server` (llama-cpp-python) and, where built, llama.cpp's `llama-server` with parallel "
             "slots (`scripts/build-llama-server.sh`); each row first sends one warm-up request per slot in use.", "",
             "| teacher | examples/s | output tokens/s | seconds | correct | unparsed |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['examples_per_s']:.3f} | {row['output_tokens_per_s']:.1f} | {row['seconds']} "
                     f"| {row['correct']}/{report['n']} | {row['unparsed']} |")
    lines += ["", "`llama_cpp.server` answers one request at a time: requests in flight wait in its queue. "
              "`llama-server` decodes the requests of its busy slots together, one token of each per step.", ""]
    write_text(out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
