"""The training recipe, chosen on validation: a small sweep of learning rate, warmup, epochs and batching.

    .venv/bin/python benchmarks/recipe_sweep.py --dataset openbookqa --fraction 0.25 --method finetune \
        --lrs 5e-5 1e-4 2e-4 5e-4 --warmups 0.06 --epochs 3
    .venv/bin/python benchmarks/recipe_sweep.py --dataset openbookqa --fraction 0.1 --method sbs \
        --teacher gold_fact --lrs 2e-4 --batchings paired rows --epochs 3
    .venv/bin/python benchmarks/recipe_sweep.py --report            # the tables only

Each setting is one `dvc exp run` of the training stage alone (its data stages run as DVC needs them),
named after the setting, so any row can be rerun with the command the table gives. The student is scored
on the validation questions (`split.valid_size` of the chosen training questions) after every epoch; the
evaluation split is never read. Results go to `reports/recipe/sweep.json` after each setting (a killed
sweep resumes, skipping what is done) and `reports/recipe/sweep.md`.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import subprocess

from ragdistill import paths
from ragdistill.io import read_json, write_json, write_text
from ragdistill.machine import cpu_model
from ragdistill.registry import METHODS

OUT = paths.REPORTS / "recipe"


def setting_name(dataset: str, method: str, teacher: str, fraction: float, lr: float, warmup: float, epochs: float,
                 batching: str, seed: int) -> str:
    return (f"sweep-{dataset}-{method}-{teacher}-f{fraction:g}-lr{lr:g}-w{warmup:g}-e{epochs:g}-{batching}"
            f"-s{seed}")


def command(name: str, dataset: str, method: str, teacher: str, fraction: float, lr: float, warmup: float,
            epochs: float, batching: str, seed: int) -> list[str]:
    stage = f"{METHODS[method].stage}@{dataset}" + ("" if method == "sbs" else f"-{method}")
    sets = [f"datasets=[{dataset}]", f"teacher={teacher}", f"split.fraction.{dataset}={fraction}", f"train.lr={lr}",
            f"train.warmup_ratio={warmup}", f"train.epochs={epochs}", f"train.batching={batching}",
            f"train.seed={seed}", "train.patience=0"]  # a sweep scores every epoch
    return ["dvc", "exp", "run", "-n", name, *[a for s in sets for a in ("-S", s)], stage]


def run_setting(args: argparse.Namespace, lr: float, warmup: float, batching: str) -> dict:
    name = setting_name(args.dataset, args.method, args.teacher, args.fraction, lr, warmup, args.epochs, batching,
                        args.seed)
    cmd = command(name, args.dataset, args.method, args.teacher, args.fraction, lr, warmup, args.epochs, batching,
                  args.seed)
    print(f"[sweep] {name}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)
    stats = read_json(paths.model_dir(args.dataset, args.method) / "train_stats.json")
    split = read_json(paths.SPLITS / args.dataset / "summary.json")
    return {"name": name, "command": " ".join(cmd), "dataset": args.dataset, "method": args.method,
            "teacher": args.teacher, "fraction": args.fraction, "train_examples": split["train"],
            "valid_examples": split["valid"], "lr": lr, "warmup_ratio": warmup, "epochs": args.epochs,
            "batching": batching, "seed": args.seed, "steps": stats["steps"], "train_seconds": stats["train_seconds"],
            "real_tokens_per_second": stats["real_tokens_per_second"], "padding_waste": stats["padding_waste"],
            "validation": stats["validation"], "loss_history": stats["loss_history"],
            "machine": cpu_model(), "when": datetime.date.today().isoformat()}


def untrained_on_validation(dataset: str, fraction: float) -> dict:
    """The control row of a sweep table: the student before training on the same validation questions,
    with the same prompt and scoring."""
    from ragdistill.config import load_params
    from ragdistill.data.example import load_examples
    from ragdistill.data.registry import task_kind
    from ragdistill.evaluation.metrics import is_correct
    from ragdistill.evaluation.scoring import answer_labels, scoring_mode
    from ragdistill.students.formatting import TaskFormatter
    from ragdistill.students.models import load_student

    params = load_params()
    valid = load_examples(paths.split_file(dataset, "valid"))
    student = load_student(params.student.model)
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder, params.student.max_input_tokens,
                              params.student.max_target_tokens)
    predictions, _ = answer_labels(student, valid, formatter, scoring_mode(params.eval.scoring, dataset),
                                   params.eval.max_new_tokens, params.eval.batch_size, desc="untrained, validation")
    right = sum(is_correct(p, e.label, task_kind(dataset)) for p, e in zip(predictions, valid))
    return {"name": f"untrained-{dataset}-f{fraction:g}", "dataset": dataset, "fraction": fraction,
            "valid_examples": len(valid), "accuracy": round(100 * right / len(valid), 2)}


def report(rows: list[dict]) -> str:
    lines = ["# Training recipe: the sweep on validation", "",
             "Generated by `benchmarks/recipe_sweep.py` from `reports/recipe/sweep.json`. Student "
             "SmolLM2-135M-Instruct; every setting scored on its validation questions (held out from the chosen "
             "training questions) after each epoch, the evaluation split never read. Accuracy % by epoch; the best "
             "epoch is bold, and it is the one a run keeps.", ""]
    controls = {(r["dataset"], r["fraction"]): r for r in rows if r["name"].startswith("untrained-")}
    runs = [r for r in rows if not r["name"].startswith("untrained-")]
    groups = itertools.groupby(sorted(runs, key=lambda r: (r["dataset"], r["method"], r["teacher"], r["fraction"])),
                               key=lambda r: (r["dataset"], r["method"], r["teacher"], r["fraction"]))
    for (dataset, method, teacher, fraction), members in groups:
        members = list(members)
        first = members[0]
        lines += [f"## {dataset}, {method} (teacher {teacher}), {fraction:g} of the training set: "
                  f"{first['train_examples']} training and {first['valid_examples']} validation questions", "",
                  "| lr | warmup | epochs | batching | steps | validation accuracy by epoch | best | minutes "
                  "| real tokens/s | padding |",
                  "| ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
        control = controls.get((dataset, fraction))
        if control and control["valid_examples"] == first["valid_examples"]:
            score = f"{control['accuracy']:.1f}"
            lines.append(f"| untrained student | – | – | – | 0 | {score} | {score} | – | – | – |")
        notes = []
        for row in sorted(members, key=lambda r: (r["batching"], r["lr"], r["warmup_ratio"], r["epochs"])):
            check = row["validation"] or {}
            best = check.get("best") or {}
            scores = [(f"**{h['accuracy']:.1f}**" if h["step"] == best.get("step") else f"{h['accuracy']:.1f}")
                      for h in check.get("history", [])]
            if row.get("note"):  # what the record cannot show, e.g. a run that shared the cores
                notes.append(row["note"])
            mark = f" ({len(notes)})" if row.get("note") else ""
            lines.append(f"| {row['lr']:g}{mark} | {row['warmup_ratio']:g} | {row['epochs']:g} | {row['batching']} | "
                         f"{row['steps']} | "
                         f"{', '.join(scores) or '–'} | "
                         + (f"{best['accuracy']:.1f} (epoch {best['epoch']:g})" if best else "–")
                         + f" | {row['train_seconds'] / 60:.1f} | {row['real_tokens_per_second']:.0f} | "
                         f"{row['padding_waste']:.1%} |")
        n = max(1, first["valid_examples"])
        lines += ["", f"Machine: {first['machine']}; minutes include the validation scoring. With {n} validation "
                  f"questions one question is {100 / n:.1f} points and an accuracy near 50% has a standard error of "
                  f"about {50 / n ** 0.5:.1f} points: differences of a few points between settings or epochs are "
                  "within noise.", "",
                  *[f"({i}) {note}" for i, note in enumerate(notes, 1)], *([""] if notes else []),
                  "Rerun a row: " + f"`{first['command']}`", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="openbookqa")
    parser.add_argument("--method", default="finetune", choices=list(METHODS))
    parser.add_argument("--teacher", default="none")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4])
    parser.add_argument("--warmups", type=float, nargs="+", default=[0.06])
    parser.add_argument("--batchings", nargs="+", default=["paired"], choices=["paired", "rows"])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true", help="only write the tables from what is recorded")
    args = parser.parse_args()
    results_path = OUT / "sweep.json"
    rows = read_json(results_path) if results_path.exists() else []
    if not args.report:
        for batching, lr, warmup in itertools.product(args.batchings, args.lrs, args.warmups):
            name = setting_name(args.dataset, args.method, args.teacher, args.fraction, lr, warmup, args.epochs,
                                batching, args.seed)
            if any(row["name"] == name for row in rows):
                print(f"[sweep] {name}: recorded; skipped", flush=True)
                continue
            rows.append(run_setting(args, lr, warmup, batching))
            control = f"untrained-{args.dataset}-f{args.fraction:g}"
            if not any(row["name"] == control for row in rows):
                rows.append(untrained_on_validation(args.dataset, args.fraction))
            write_json(results_path, rows)
            write_text(OUT / "sweep.md", report(rows))
    write_text(OUT / "sweep.md", report(rows))
    print(f"[sweep] {len(rows)} settings in {results_path}; tables in {OUT / 'sweep.md'}", flush=True)


if __name__ == "__main__":
    main()
