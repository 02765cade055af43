"""Throughput of the in-process llama.cpp teacher with and without prefix reuse, on OpenBookQA dev.

    /tmp/quiet .venv/bin/python benchmarks/teacher_throughput.py          # on a shared machine
    .venv/bin/python benchmarks/teacher_throughput.py --n 12 --threads 2

Reads ``<data>/openbookqa/Main/{train,dev}.jsonl`` directly (data root: ``--data``, else
``$RAGDISTILL_DATA``, else ``../shared/data``). Three fixed training questions with hand-written
rationales are the demonstrations; the first ``--n`` dev questions are annotated twice by the same
loaded model: once clearing llama.cpp's key-value cache before each prompt, once reusing the cached
prefix (instruction + demonstrations). Writes ``reports/teacher_throughput.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ragdistill.data.dss import format_choices
from ragdistill.data.example import Example
from ragdistill.io import write_json, write_text
from ragdistill.teachers import DecodingSettings, build_prompt, parse_teacher_output
from ragdistill.teachers.llama_cpp import LlamaCppTeacher

REPO = Path(__file__).resolve().parents[1]

# Training questions 7-980, 7-584, 7-870 with rationales written for this benchmark.
DEMO_RATIONALES = {
    "7-980": "Plants need sunlight to sprout and bloom, and strong sun also makes them wilt.",
    "7-584": "Things look smaller the farther away they are, and miles away is much farther than a camera.",
    "7-870": "The stomach digests food by breaking it down into nutrients.",
}


def _obqa(path: Path) -> list[Example]:
    examples = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            choices = [c["text"] for c in row["question"]["choices"]]
            letters = [c["label"] for c in row["question"]["choices"]]
            examples.append(Example(
                id=row["id"], input=format_choices(row["question"]["stem"], choices),
                label=choices[letters.index(row["answerKey"])], source="openbookqa", choices=choices,
            ))
    return examples


def _machine() -> dict:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                   "")
    except OSError:
        pass
    import llama_cpp

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "llama_cpp_python": llama_cpp.__version__, "git_commit": commit}


def _command() -> str:
    """This command line, with a wrapper such as ``/tmp/quiet`` when the parent process is one."""
    argv = [sys.executable.replace(str(REPO) + "/", ""), *sys.argv]
    try:
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode().split("\0")
        if sys.argv[0] in parent and parent.index(sys.argv[0]) >= 2:
            argv = parent[1 : parent.index(sys.argv[0])] + sys.argv
    except (OSError, UnicodeDecodeError):
        pass
    return " ".join(shlex.quote(a) for a in argv)


def _run(teacher: LlamaCppTeacher, prompts, examples, settings, reuse: bool) -> dict:
    teacher.reuse_prefix = reuse
    teacher.llm.reset()
    rows, start = [], time.perf_counter()
    for messages, example in zip(prompts, examples):
        [completion] = teacher.complete([messages], settings)
        rationale, label, how = parse_teacher_output(completion.text, example.choices)
        rows.append({"id": example.id, "gold": example.label, "label": label, "parse": how,
                     "correct": label == example.label, "text": completion.text,
                     "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                     "seconds": round(completion.seconds, 3)})
    seconds = time.perf_counter() - start
    tokens = sum(r["completion_tokens"] for r in rows)
    return {
        "reuse_prefix": reuse, "examples": len(rows), "seconds": round(seconds, 2),
        "examples_per_s": round(len(rows) / seconds, 4), "output_tokens_per_s": round(tokens / seconds, 2),
        "seconds_per_example": round(seconds / len(rows), 2),
        "first_example_seconds": rows[0]["seconds"], "later_examples_mean_seconds":
            round(sum(r["seconds"] for r in rows[1:]) / max(1, len(rows) - 1), 2),
        "prompt_tokens_mean": round(sum(r["prompt_tokens"] for r in rows) / len(rows), 1),
        "completion_tokens": tokens, "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 4),
        "unparsed": sum(r["label"] is None for r in rows), "rows": rows,
    }


def render(report: dict) -> str:
    """The Markdown report from the JSON one."""
    reset, reuse = report["runs"]["reset"], report["runs"]["reuse"]
    n, machine = len(report["questions"]), report["machine"]
    lines = [
        "# Teacher throughput: llama.cpp in-process, prefix reuse on and off",
        "",
        f"Generated by `{report['command']}` on {report['date']} (compute {report['total_seconds']} s).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}; llama-cpp-python "
        f"{machine['llama_cpp_python']}, {report['n_threads']} threads, n_ctx {report['n_ctx']}."
        + (" Other CPU-heavy processes were paused during the run (`/tmp/quiet`)." if "quiet" in report["command"]
           else ""),
        "",
        f"Teacher `{report['model']}` ({report['model_file']}), greedy, at most "
        f"{report['settings']['max_new_tokens']} new tokens; {n} OpenBookQA dev questions (the first ones of "
        f"`Main/dev.jsonl`), 3 fixed demonstrations from train ({', '.join(report['demonstrations'])}), no "
        f"retrieval. Model load: {report['load_seconds']} s. The same loaded model runs both passes, "
        "the reset pass first.",
        "",
        "| KV cache | examples/s | output tokens/s | s/example (first, later mean) | prompt tokens (mean) "
        "| output tokens | accuracy | unparsed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in (("cleared before each prompt", reset), ("prefix reused", reuse)):
        lines.append(
            f"| {name} | {run['examples_per_s']:.3f} | {run['output_tokens_per_s']:.1f} | {run['seconds_per_example']} "
            f"({run['first_example_seconds']}, {run['later_examples_mean_seconds']}) | {run['prompt_tokens_mean']} "
            f"| {run['completion_tokens']} | {run['accuracy']:.2f} ({sum(r['correct'] for r in run['rows'])}"
            f"/{run['examples']}) | {run['unparsed']} |"
        )
    lines += [
        "",
        "Output tokens/s counts the generated tokens over the whole wall time (prompt evaluation included).",
        "",
        f"Speed-up from prefix reuse: {reuse['examples_per_s'] / reset['examples_per_s']:.2f}x examples/s. "
        f"Identical outputs in both passes: {report['identical_outputs']}/{n}. With reuse only the question is "
        "evaluated, in a smaller batch than the whole prompt; llama.cpp's CPU kernels are most likely not "
        "batch-invariant, so the logits differ in the last bits and a near-tie in greedy decoding can flip: "
        "reuse changes the speed and, rarely, the text. Accuracy on "
        f"{n} questions is only a signal (a 95% interval spans about ±0.28 at this size).",
        "",
        "Per-question outputs: `reports/teacher_throughput.json`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m", help="zoo teacher name or .gguf")
    parser.add_argument("--data", default=os.environ.get("RAGDISTILL_DATA") or str(REPO.parent / "shared" / "data"))
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", default=str(REPO / "reports" / "teacher_throughput"))
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json, measure nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        out = Path(args.out)
        write_text(out.with_suffix(".md"), render(json.loads(out.with_suffix(".json").read_text())))
        return 0

    root = Path(args.data) / "openbookqa" / "Main"
    train = {e.id: e for e in _obqa(root / "train.jsonl")}
    demos = []
    for demo_id, rationale in DEMO_RATIONALES.items():
        demo = train[demo_id]
        demo.rationale = rationale
        demos.append(demo)
    examples = _obqa(root / "dev.jsonl")[: args.n]
    prompts = [build_prompt(e, demos, None) for e in examples]
    settings = DecodingSettings(max_new_tokens=args.max_new_tokens)

    started = time.perf_counter()
    teacher = LlamaCppTeacher(args.model, n_ctx=2048, n_threads=args.threads)
    load_seconds = time.perf_counter() - started
    teacher.complete([[{"role": "user", "content": "Hi"}]], DecodingSettings(max_new_tokens=1))  # page weights in
    runs = [_run(teacher, prompts, examples, settings, reuse=False),
            _run(teacher, prompts, examples, settings, reuse=True)]
    teacher.close()
    same = sum(a["text"] == b["text"] for a, b in zip(runs[0]["rows"], runs[1]["rows"]))
    report = {
        "command": _command(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(), "model": teacher.model_id, "model_file": Path(teacher.model_path).name,
        "n_threads": args.threads, "n_ctx": 2048, "settings": settings.to_dict(),
        "load_seconds": round(load_seconds, 2),
        "questions": [e.id for e in examples], "demonstrations": list(DEMO_RATIONALES),
        "identical_outputs": same, "runs": {("reuse" if r["reuse_prefix"] else "reset"): r for r in runs},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    write_json(out.with_suffix(".json"), report)
    text = render(report)
    write_text(out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
