"""Snapshots: what a finished run of a cell measured, as committed in ``reports/study/<cell>.json``.

A snapshot holds the cell and its overrides, the commit, per row (the teachers and ``METHODS``) accuracy,
interval, cost, device, per-question correctness and answer (``predicted``), each student's loss history,
the recorded parameters, the machine, and, for a cell whose run was replaced by a rerun (``adopt``),
``replaces``: the earlier runs and how they differed. ``machine.recorded`` is false where the run did not
record its machine and the snapshot holds what the report stated of it instead.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from pathlib import Path

from ragdistill import paths
from ragdistill.config import METHODS, Params, load_params
from ragdistill.data.example import load_examples
from ragdistill.data.registry import task_kind
from ragdistill.evaluation.metrics import is_correct
from ragdistill.io import DataError, read_json, read_jsonl, write_json
from ragdistill.log import log
from ragdistill.machine import describe
from ragdistill.pipeline.summarize import run as summarize
from ragdistill.registry import UNTRAINED
from ragdistill.study.grid import VARIANTS, Cell, parse_cell

STUDY = paths.REPORTS / "study"
RERUNS = Path(".cache/study-reruns")
ROW_FIELDS = ("accuracy", "ci_low", "ci_high", "n", "train_seconds", "eval_seconds", "train_examples", "cost",
              "device")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()


def teacher_answers(dataset: str, teacher: str) -> dict[str, tuple[str | None, bool]]:
    """Per evaluation question, the teacher's own label and whether it was right (read from its annotations)."""
    gold = {e.id: e.label for e in load_examples(paths.prepared(dataset, "eval"))}
    kind = task_kind(dataset)
    out = {}
    for row in read_jsonl(paths.annotations(dataset, teacher)):
        if row.get("split") == "eval" and row["id"] in gold:
            label = (row.get("meta") or {}).get("teacher_label_raw", row.get("teacher_label"))
            out[row["id"]] = (label, is_correct(label, gold[row["id"]], kind))
    return out


def _params_snapshot(params: Params) -> dict:
    return {"student": asdict(params.student), "train": asdict(params.train), "eval": asdict(params.eval),
            "teacher_model": {k: v for k, v in asdict(params.teacher_model).items()
                              if k in ("backend", "model", "max_new_tokens", "demonstrations", "label_policy")},
            "retrieval": asdict(params.retrieval), "split_seed": params.split.seed,
            "split_valid_size": params.split.valid_size, "split_held_out": params.split.teacher_selection,
            "rationale_filter": params.split.rationale_filter}


def machine_label(machine: dict) -> str:
    return f"{machine['cores']} cores of an {machine['cpu']}, " + (
        f"GPU {machine['gpu']}" if machine["gpu"] else "no GPU")


def collect(cell: Cell, directory: Path = STUDY) -> Path:
    """Snapshot the finished run in the workspace into ``<directory>/<cell>.json`` (``reports/study/``)."""
    if cell.targets():  # the cell ran only some stages, summarize not among them
        summarize(load_params())
    summary = read_json(paths.REPORTS / "summary.json")
    if cell.dataset not in summary:
        raise DataError(f"reports/summary.json has no {cell.dataset!r}: did the run for {cell.name} finish?")
    info = summary[cell.dataset]
    teacher, evidence = VARIANTS[cell.variant]
    if info.get("teacher") != teacher or info["fraction"] != cell.fraction or info.get("seed") != cell.seed \
            or bool(info.get("student_evidence")) != evidence:
        raise DataError(f"reports/summary.json was made by another configuration than {cell.name}: {info}")
    rows = {}
    for name in cell.rows(list(info["rows"])):
        row = info["rows"][name]
        rows[name] = {k: row.get(k) for k in ROW_FIELDS}  # None where absent: a teacher's row has no device
        if name in METHODS or name == UNTRAINED:
            predictions = read_jsonl(paths.predictions(cell.dataset, name))
            scored = {r["id"]: (r["prediction"], bool(r["correct"])) for r in predictions}
        else:
            scored = teacher_answers(cell.dataset, teacher)
        rows[name]["correct"] = {k: int(correct) for k, (_, correct) in sorted(scored.items())}
        rows[name]["predicted"] = {k: prediction for k, (prediction, _) in sorted(scored.items())}
        if name in METHODS:  # what the report's reader needs to see whether and how a student learned
            evaluation = read_json(paths.eval_result(cell.dataset, name))
            for key in ("loss_history", "validation", "train_tokens_per_second"):
                rows[name][key] = evaluation.get(key)
    snapshot = {"cell": cell.name, "dataset": cell.dataset, "variant": cell.variant, "teacher": teacher,
                "student_evidence": evidence, "fraction": cell.fraction, "seed": cell.seed,
                "train_examples": info["train_examples"], "eval_examples": info["eval_examples"],
                "commit": _git("rev-parse", "HEAD"), "overrides": cell.overrides(), "students": list(cell.methods),
                "rows": rows,
                "params": _params_snapshot(load_params()), "machine": {**describe(), "recorded": True},
                "teacher_unparsed": info.get("teacher_unparsed")}
    out = directory / f"{cell.name}.json"
    write_json(out, snapshot)
    log(f"study: {cell.name} collected into {out}")
    return out


NOT_SNAPSHOTS = ("plan.json", "primary.json")  # the analysis plan and its result live beside the snapshots


def load_snapshots(directory: Path = STUDY) -> list[dict]:
    return [read_json(p) for p in sorted(directory.glob("*.json")) if p.name not in NOT_SNAPSHOTS]


def committed_snapshot(cell: Cell) -> Path:
    """The committed snapshot a rerun of ``cell`` is compared with; an error if there is none."""
    path = STUDY / f"{cell.name}.json"
    if not path.exists():
        raise DataError(f"{path} does not exist: {cell.name} has no committed snapshot to rerun "
                        "against (`study run` runs a new cell)")
    return path


def compare(committed: dict, rerun: dict) -> list[dict]:
    """Row by row: both accuracies and the questions the two runs of one cell answered differently."""
    # .get: either file may be any JSON a user named, and should be refused with a message.
    if committed.get("overrides") != rerun.get("overrides"):
        raise DataError(f"not the same cell: {committed.get('cell')} ({committed.get('overrides')}) against "
                        f"{rerun.get('cell')} ({rerun.get('overrides')})")
    rows = []
    for name in sorted(set(committed["rows"]) | set(rerun["rows"])):
        a, b = committed["rows"].get(name), rerun["rows"].get(name)
        if a is None or b is None:
            rows.append({"row": name, "committed": a and a["accuracy"], "rerun": b and b["accuracy"],
                         "differ": None, "n": None})
            continue
        questions = set(a["correct"]) | set(b["correct"])
        rows.append({"row": name, "committed": a["accuracy"], "rerun": b["accuracy"], "n": len(questions),
                     "differ": sum(a["correct"].get(q) != b["correct"].get(q) for q in questions)})
    return rows


def compare_lines(committed: dict, rerun: dict) -> tuple[list[str], bool]:
    """What ``compare`` prints, and whether the rerun answered every question of every row as committed."""
    rows = compare(committed, rerun)
    lines = [f"{committed['cell']}: committed run at {committed['commit'][:12]} on "
             f"{machine_label(committed['machine'])}; rerun at {rerun['commit'][:12]} on "
             f"{machine_label(rerun['machine'])}"]
    for row in rows:
        if row["differ"] is None:
            lines.append(f"  {row['row']}: only in the {'rerun' if row['committed'] is None else 'committed run'}")
        else:
            lines.append(f"  {row['row']}: {100 * row['committed']:.1f}% committed, {100 * row['rerun']:.1f}% rerun; "
                         f"{row['differ']} of {row['n']} questions scored differently")
    same = all(row["differ"] == 0 for row in rows)
    lines.append("reproduced: every row scored every question as committed" if same else
                 "NOT reproduced exactly (see the rows above)")
    return lines, same


def adopt(rerun_path: Path) -> Path:
    """Make a rerun the cell's committed snapshot, recording the run it replaces and how the two differed.

    For a cell whose checkpoints are lost and whose rerun did not reproduce it question for question (say,
    retrained on another CPU), the rerun is the only run a user can pull, so the report should show it."""
    rerun = read_json(rerun_path)
    if "cell" not in rerun or "rows" not in rerun:
        raise DataError(f"{rerun_path} is not a study snapshot (no 'cell' or 'rows')")
    path = committed_snapshot(parse_cell(rerun["cell"]))  # parse_cell: a cell's name, not a path
    committed = read_json(path)
    rows = compare(committed, rerun)
    missing = [row["row"] for row in rows if row["differ"] is None]
    if missing:
        raise DataError(f"{rerun_path} and {path} do not hold the same rows ({', '.join(missing)}): not adopted")
    replaced = {"commit": committed["commit"], "machine": committed["machine"],
                "rows": {row["row"]: {"accuracy": row["committed"], "differ": row["differ"], "n": row["n"]}
                         for row in rows}}
    write_json(path, {**rerun, "replaces": [*committed.get("replaces", []), replaced]})
    log(f"study: {path} now holds the rerun from {rerun_path} (the run it replaces is recorded under 'replaces'); "
        f"questions scored differently: " + ", ".join(f"{row['row']} {row['differ']}" for row in rows))
    return path
