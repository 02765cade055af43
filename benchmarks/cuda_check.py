"""The CUDA path, checked and timed on a machine with a GPU: writes reports/benchmarks/cuda.{json,md}.

    RAGDISTILL_DATA=../shared/data python benchmarks/cuda_check.py                   # SmolLM2-135M from the zoo
    RAGDISTILL_DATA=... python benchmarks/cuda_check.py --student DIR --random-weights   # its architecture only

Nothing here runs in CI (CI has no GPU). Each run below is its own process, so that no device or
mixed-precision state of one leaks into the next; all of them use the pipeline's own code
(``train_student`` for train-sbs, ``pick_device`` and ``answer_labels`` for evaluate) on OpenBookQA
training questions with the published plain-teacher rationales and on the dev questions:

1. *Same numbers*: a few training steps from the same weights, seed and rows on the CPU and on the GPU
   (fp32), compared by training loss and by the largest difference between the resulting weights.
2. *Speed*: one epoch of train-sbs on the GPU at the pipeline's settings (``params.yaml``: batch size,
   learning rate, token limits) and at the larger batch sizes of ``--batch-sizes``, each in fp32 and in
   bf16 through ``ACCELERATE_MIXED_PRECISION=bf16`` (what ``accelerate launch --mixed_precision bf16``
   sets; the Trainer reads it, so the pipeline needs no code for it). The learning rate stays the
   pipeline's at every batch size, so only the first batch size's loss is the pipeline's.
3. *Evaluation*: the fp32 model scores the dev questions on the GPU and on the CPU (choice likelihood,
   as the evaluate stage does for OpenBookQA); same answers, largest score difference, seconds each.

``--random-weights`` builds the student from its config and tokenizer with random weights (seed 0): for a
GPU machine that cannot receive the real weights. Timings do not depend on the weights' values; the loss
and answers are then those of an untrained model, so only their CPU-vs-GPU agreement means anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ragdistill import paths
from ragdistill.io import read_json, write_json, write_text

HERE = Path(__file__).resolve().parent


def _examples(split: str, limit: int) -> list:
    from ragdistill.config import load_params
    from ragdistill.data.registry import load_dataset, resolve_data_root

    if split == "train":
        sys.path.insert(0, str(HERE))
        from performance import _obqa_sbs_examples  # the published rationales, as the CPU benchmark uses

        return _obqa_sbs_examples(limit)
    return load_dataset("openbookqa", resolve_data_root(load_params().data.root), "eval")[:limit]


def _train(source: str, out: Path, examples: int, max_steps: int, batch_size: int) -> dict:
    """One train-sbs run (in this process, on whatever device the environment leaves the Trainer)."""
    from ragdistill.config import load_params
    from ragdistill.students.formatting import build_task_examples
    from ragdistill.students.models import load_student
    from ragdistill.students.trainer import train_student

    settings = load_params()
    groups, _ = build_task_examples(_examples("train", examples), "sbs", alpha=settings.train.alpha)
    student = load_student(source)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    seen = []  # the dtype the vocabulary projection computes in: shows whether mixed precision took effect
    hook = student.model.get_output_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    stats = train_student(student, groups, out, lr=settings.train.lr, epochs=1.0, batch_size=batch_size, seed=0,
                          max_steps=max_steps, checkpoint_dir=out.with_name(out.name + "-checkpoints"),
                          save_steps=10**6, max_input_tokens=settings.student.max_input_tokens,
                          max_target_tokens=settings.student.max_target_tokens)
    hook.remove()
    device = str(next(student.model.parameters()).device)
    peak = round(torch.cuda.max_memory_allocated() / 2**20) if device.startswith("cuda") else None
    return {"device": device, "batch_size": batch_size, "steps": stats["steps"], "seconds": stats["train_seconds"],
            "real_tokens_per_s": stats["real_tokens_per_second"], "final_loss": stats["final_loss"],
            "rows": stats["rows"], "gpu_peak_mb": peak, "logits_dtype": str(seen[0]).replace("torch.", "")}


def _evaluate(model_dir: str, device: str, questions: int) -> dict:
    from ragdistill.config import load_params
    from ragdistill.evaluation.scoring import answer_labels
    from ragdistill.students.formatting import TaskFormatter
    from ragdistill.students.models import load_student, pick_device

    device = pick_device(device)
    student = load_student(model_dir, device=device)
    limits = load_params().student
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder, limits.max_input_tokens,
                              limits.max_target_tokens)
    examples = _examples("eval", questions)
    answer_labels(student, examples[:4], formatter, "choices")  # warm-up (kernels, allocator)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    predictions, scores = answer_labels(student, examples, formatter, "choices")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"device": device, "questions": len(examples), "seconds": round(time.perf_counter() - start, 2),
            "predictions": predictions, "scores": scores}


def _child(args: argparse.Namespace) -> None:
    """One measured run, in its own process; prints its result as the last line of JSON."""
    if args.child == "train":
        result = _train(args.student, Path(args.model_out), args.examples, args.max_steps, args.batch_size)
    else:
        result = _evaluate(args.model_out, args.device, args.questions)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(argv: list[str], env: dict | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *argv]
    print(f"cuda check: {' '.join(argv)} {env or ''}", flush=True)
    done = subprocess.run(command, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"cuda check: `{' '.join(argv)}` failed with exit code {done.returncode}")
    line = next(ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def _random_student(source: str, folder: Path) -> str:
    """The student's architecture and tokenizer with random weights (seed 0), saved as safetensors."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ragdistill.zoo import resolve_student

    location = resolve_student(source)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(location, trust_remote_code=False)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(location, trust_remote_code=False).save_pretrained(folder)
    return str(folder)


def _max_weight_difference(a: str, b: str) -> float:
    from safetensors.torch import load_file

    first, second = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
    return max(float((first[k].float() - second[k].float()).abs().max()) for k in first)


def _markdown(result: dict) -> str:
    agree, speed, ev = result["agreement"], result["speed"], result["evaluation"]
    lines = [
        "# The CUDA path", "",
        f"Measured {result['when']} on {result['gpu']} (torch {result['torch']}, CUDA {result['cuda']}), "
        f"student `{result['student']}`" + (" with **random weights** (its architecture and tokenizer; the "
                                           "weights could not be sent to the GPU machine)" if result["random_weights"]
                                           else "") + f". Regenerate: `{result['command']}`.", "",
        f"## Same numbers on the CPU and the GPU ({agree['steps']} train-sbs steps, fp32, seed 0)", "",
        "| | CPU | GPU |", "|---|---|---|",
        f"| training loss | {agree['cpu']['final_loss']} | {agree['cuda']['final_loss']} |",
        f"| seconds | {agree['cpu']['seconds']} | {agree['cuda']['seconds']} |", "",
        f"Largest difference between the two runs' weights afterwards: {agree['max_weight_difference']:.2e}.", "",
        f"## train-sbs on the GPU: one epoch of {speed[0]['rows']} rows, learning rate {result['lr']}", "",
        "| batch (rows) | precision asked | logits computed in | steps | seconds | real tokens/s | "
        "peak GPU memory (MiB) | training loss |",
        "|---|---|---|---|---|---|---|---|"]
    for run in speed:
        lines.append(f"| {run['batch_size']} | {run['precision']} | {run['logits_dtype']} | {run['steps']} | "
                     f"{run['seconds']} | {run['real_tokens_per_s']:,.0f} | {run['gpu_peak_mb']} | "
                     f"{run['final_loss']} |")
    lines += [
        "", f"Batch {speed[0]['batch_size']} is the pipeline's (`train.batch_size`); the larger batches keep its "
        "learning rate, so their losses are not the pipeline's. bf16 is `ACCELERATE_MIXED_PRECISION=bf16` in the "
        "environment (what `accelerate launch --mixed_precision bf16` sets);"
        " the pipeline chooses with `train.precision` (fp32 by default, or bf16).",
        "",
        f"## evaluate: {ev['cuda']['questions']} OpenBookQA dev questions, choice likelihood", "",
        "| device | seconds |", "|---|---|",
        f"| CPU ({result['cpu_threads']} threads) | {ev['cpu']['seconds']} |",
        f"| GPU | {ev['cuda']['seconds']} |", "",
        f"Same answer on {ev['same_answers']} of {ev['cuda']['questions']} questions; largest difference of a "
        f"choice's mean log-probability (scores are rounded to 1e-4): {ev['max_score_difference']:.1e}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="smollm2-135m-instruct")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--examples", type=int, default=495, help="training questions (2 rows each)")
    parser.add_argument("--agree-steps", type=int, default=10)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[32, 64],
                        help="batch sizes (rows) timed beside the pipeline's train.batch_size")
    parser.add_argument("--questions", type=int, default=500, help="dev questions to score")
    parser.add_argument("--out", type=Path, default=paths.REPORTS / "benchmarks")
    parser.add_argument("--child", choices=["train", "evaluate"], help=argparse.SUPPRESS)
    parser.add_argument("--model-out", help=argparse.SUPPRESS)
    parser.add_argument("--max-steps", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=8, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    if not torch.cuda.is_available():
        raise SystemExit(f"cuda check: torch {torch.__version__} sees no CUDA device on this machine")
    scratch = Path(tempfile.mkdtemp(prefix="cuda-check-"))
    source = _random_student(args.student, scratch / "student") if args.random_weights else args.student
    common = ["--student", source, "--examples", str(args.examples)]

    from ragdistill.config import load_params

    settings = load_params()
    pipeline_batch = settings.train.batch_size

    def train(name: str, max_steps: int, env: dict, batch_size: int = pipeline_batch) -> dict:
        return _spawn(["--child", "train", *common, "--model-out", str(scratch / name),
                       "--max-steps", str(max_steps), "--batch-size", str(batch_size)], env)

    cpu = train("agree-cpu", args.agree_steps, {"CUDA_VISIBLE_DEVICES": ""})  # the Trainer sees no GPU
    gpu = train("agree-cuda", args.agree_steps, {})
    agreement = {"steps": args.agree_steps, "cpu": cpu, "cuda": gpu,
                 "max_weight_difference": _max_weight_difference(str(scratch / "agree-cpu"),
                                                                 str(scratch / "agree-cuda"))}
    precisions = {"fp32": {}, "bf16": {"ACCELERATE_MIXED_PRECISION": "bf16"}}
    speed = [{"precision": precision, **train(f"{precision}-b{batch}" if batch != pipeline_batch else precision,
                                              -1, env, batch)}
             for batch in dict.fromkeys([pipeline_batch, *args.batch_sizes]) for precision, env in precisions.items()]
    evaluation = {device: _spawn(["--child", "evaluate", "--model-out", str(scratch / "fp32"), "--device", device,
                                  "--questions", str(args.questions)]) for device in ("cuda", "cpu")}
    pairs = list(zip(evaluation["cpu"].pop("scores"), evaluation["cuda"].pop("scores")))
    evaluation["max_score_difference"] = max(abs(a - b) for x, y in pairs for a, b in zip(x, y))
    evaluation["same_answers"] = sum(a == b for a, b in zip(evaluation["cpu"].pop("predictions"),
                                                             evaluation["cuda"].pop("predictions")))
    result = {"when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
              "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
              "student": args.student, "random_weights": args.random_weights, "lr": settings.train.lr,
              "command": " ".join(["python", "benchmarks/cuda_check.py", *sys.argv[1:]]),
              "agreement": agreement, "speed": speed, "evaluation": evaluation}
    write_json(args.out / "cuda.json", result)
    write_text(args.out / "cuda.md", _markdown(result))
    print(_markdown(read_json(args.out / "cuda.json")))


if __name__ == "__main__":
    main()
