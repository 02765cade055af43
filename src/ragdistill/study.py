"""The research grid: do students of a RAG teacher beat students of a plain teacher?

A *cell* of the grid is one complete pipeline run, one ``dvc exp run`` with these parameters:

- ``teacher``: ``plain`` or ``rag`` (the same LLM, without and with retrieved evidence);
- ``split.fraction.<dataset>``: the share of the training questions the students learn from;
- ``train.seed``: the students' seed (the training subset stays fixed by ``split.seed``, so every seed
  reuses the same teacher replies);
- ``split.student_evidence``: whether the students also read the retrieved evidence (train and test).

Each run trains and scores ``finetune``, ``distill`` and ``sbs``. ``collect`` then snapshots what the run
measured (accuracies, intervals, per-question correctness, deployment cost, the commit) into
``reports/study/<cell>.json``, which is committed; ``report`` builds ``reports/REPORT.md`` and its figures
from those snapshots, so the report regenerates without rerunning anything. (Its majority-answer rows
also read the gold labels from the data directory; without it they are left out.)

    python -m ragdistill.study run --dataset openbookqa --fractions 0.1 --seeds 0
    python -m ragdistill.study report

``run`` calls ``dvc exp run`` in this workspace one cell at a time and skips cells already collected.
With ``--queue`` it only queues them (``dvc queue start`` runs them; then ``dvc exp apply <cell>`` and
``python -m ragdistill.study collect <cell>`` per cell).
``compare A.json B.json`` says whether a rerun of a cell reproduced a committed snapshot, question by question.
``rerun <cell>`` trains a committed cell again from scratch (``dvc exp run -f``: no run cache), snapshots it
beside the committed one (``.cache/study-reruns``), compares the two, and with ``--push <git remote>`` pushes
the experiment (``dvc exp push``: its git ref, and its checkpoints to the default DVC remote) when it
reproduced the committed snapshot exactly; the way to put a lost cell's checkpoints back on a remote.
``adopt .cache/study-reruns/<cell>.json`` makes a rerun that did not reproduce exactly the cell's committed
snapshot (it records the run it replaces and how the two differed; the report lists such cells), for when
the committed run's checkpoints are gone and the rerun is the only run that can be pulled.
``check-remote [--remote NAME]`` says which committed cells' student checkpoints a DVC remote holds in full
(from each cell's experiment ref in this clone and the remote; nothing is pulled).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ragdistill import paths
from ragdistill.config import Params, load_params
from ragdistill.data.example import Example, load_examples
from ragdistill.data.registry import load_dataset, resolve_data_root, task_kind
from ragdistill.data.split import choose_training
from ragdistill.evaluation.metrics import bootstrap_interval, is_correct, paired_bootstrap
from ragdistill.io import DataError, read_json, read_jsonl, write_json, write_text
from ragdistill.log import log
from ragdistill.machine import describe

STUDY = paths.REPORTS / "study"
RERUNS = Path(".cache/study-reruns")
METHODS = ("finetune", "distill", "sbs")
# Grid variants: the teacher, and whether the student reads evidence too.
VARIANTS = {"plain": ("plain", False), "rag": ("rag", False), "rag-student-evidence": ("rag", True)}


@dataclass(frozen=True)
class Cell:
    dataset: str
    variant: str
    fraction: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.variant}-f{self.fraction:g}-s{self.seed}"

    def overrides(self) -> list[str]:
        teacher, evidence = VARIANTS[self.variant]
        return [f"datasets=[{self.dataset}]", f"teacher={teacher}", f"split.fraction.{self.dataset}={self.fraction}",
                f"train.seed={self.seed}", f"split.student_evidence={str(evidence).lower()}"]

    def command(self, queue: bool = False) -> list[str]:
        sets = [arg for override in self.overrides() for arg in ("-S", override)]
        return ["dvc", "exp", "run", "-n", self.name, *sets, *(["--queue"] if queue else [])]


def grid(dataset: str, fractions: list[float], seeds: list[int], variants: list[str]) -> list[Cell]:
    return [Cell(dataset, v, f, s) for f in fractions for s in seeds for v in variants]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()


def _correct_by_id(path: Path) -> dict[str, bool]:
    return {row["id"]: bool(row["correct"]) for row in read_jsonl(path)}


def teacher_correct(dataset: str, teacher: str) -> dict[str, bool]:
    """Per evaluation question, whether the teacher's own label was right (read from its annotations)."""
    gold = {e.id: e.label for e in load_examples(paths.prepared(dataset, "eval"))}
    kind = task_kind(dataset)
    out = {}
    for row in read_jsonl(paths.annotations(dataset, teacher)):
        if row.get("split") == "eval" and row["id"] in gold:
            label = (row.get("meta") or {}).get("teacher_label_raw", row.get("teacher_label"))
            out[row["id"]] = is_correct(label, gold[row["id"]], kind)
    return out


def _params_snapshot(params: Params) -> dict:
    return {"student": asdict(params.student), "train": asdict(params.train), "eval": asdict(params.eval),
            "teacher_model": {k: v for k, v in asdict(params.teacher_model).items()
                              if k in ("backend", "model", "max_new_tokens", "demonstrations", "label_policy")},
            "retrieval": asdict(params.retrieval), "split_seed": params.split.seed}


def _beyond_the_grid(recorded: dict) -> dict:
    """A run's recorded parameters less the grid's own (the students' seed). ``eval.device`` came later: runs
    recorded before it evaluated on the CPU under the default, ``auto``."""
    out = {k: v for k, v in recorded.items() if k != "train"}
    out["train"] = {k: v for k, v in recorded["train"].items() if k != "seed"}
    out["eval"] = {"device": "auto", **recorded["eval"]}
    return out


# Snapshots collected before they recorded their machine: what this report's compute line said of all runs then.
UNRECORDED_MACHINE = "2 cores of an AMD EPYC (AVX2), no GPU"
UNRECORDED_CAVEAT = " (not recorded in the snapshot; as this report stated then)"


def _machine_label(machine: dict | None) -> str:
    if not machine:
        return UNRECORDED_MACHINE
    return f"{machine['cores']} cores of an {machine['cpu']}, " + (
        f"GPU {machine['gpu']}" if machine.get("gpu") else "no GPU")


def _compute_line(snapshots: list[dict]) -> str:
    counts = Counter(_machine_label(s.get("machine")) + ("" if s.get("machine") else UNRECORDED_CAVEAT)
                     for s in snapshots)
    return "- Compute: " + "; ".join(f"{name}: {n} run{'s' if n > 1 else ''}"
                                     for name, n in sorted(counts.items(), key=lambda kv: -kv[1])) + "."


def _replacement_lines(snapshots: list[dict]) -> list[str]:
    """Cells whose run is a rerun that replaced a lost one (``adopt``): which, and how the two differed."""
    replaced = sorted((s for s in snapshots if s.get("replaces")), key=lambda s: s["cell"])
    if not replaced:
        return []
    parts = []
    for snapshot in replaced:
        earlier = snapshot["replaces"][-1]
        changes = [f"{name} {row['differ']} of {row['n']} ({_pct(row['accuracy'])} → "
                   f"{_pct(snapshot['rows'][name]['accuracy'])}%)"
                   for name, row in sorted(earlier["rows"].items()) if row["differ"]]
        parts.append(f"`{snapshot['cell']}` (earlier run on {_machine_label(earlier.get('machine'))}, commit "
                     f"{str(earlier.get('commit'))[:12]}; questions scored differently: "
                     f"{', '.join(changes) or 'none'})")
    return [f"- Retrained cells ({len(replaced)}): a rerun replaced an earlier run of the cell whose checkpoints "
            "were lost; the tables show the rerun, whose checkpoints are the ones pushed to the DVC remote: "
            + "; ".join(parts) + "."]


def _setup_lines(snapshots: list[dict]) -> list[str]:
    """The setup as the runs recorded it; where the runs differ beyond the grid, say so."""
    recorded = [s["params"] for s in snapshots if s.get("params")]
    if not recorded:
        return ["- The runs did not record their parameters."]
    first = recorded[0]
    same = all(_beyond_the_grid(r) == _beyond_the_grid(first) for r in recorded)
    teacher, student, train, retrieval = first["teacher_model"], first["student"], first["train"], first["retrieval"]
    # Runs collected before the evaluate stage recorded its device all ran on CPU-only machines.
    devices = sorted({row.get("device") or "cpu" for s in snapshots for name, row in s["rows"].items()
                      if name in METHODS})
    return [
        f"- Teacher: `{teacher['model']}` ({teacher['backend']}, greedy, {teacher['demonstrations']} fixed "
        f"demonstrations, at most {teacher['max_new_tokens']} new tokens, label policy `{teacher['label_policy']}`). "
        f"The RAG teacher reads the top {retrieval['k']} passages of the `{retrieval['method']}` retriever "
        f"(query: {retrieval['query']}).",
        f"- Student: `{student['model']}`, {train['epochs']:g} epoch(s), lr {train['lr']:g}, batch "
        f"{train['batch_size']}x{train['grad_accum']}, alpha {train['alpha']:g}, sbs labels: {train['sbs_labels']}; "
        f"inputs up to {student['max_input_tokens']} tokens; scoring `{first['eval']['scoring']}`, evaluated on "
        f"{' and '.join(devices)}.",
        f"- Training subset fixed by split seed {first['split_seed']}." + (
            "" if same else " **Warning: the runs differ in parameters beyond the grid; compare with care.**")]


def collect(cell: Cell, directory: Path = STUDY) -> Path:
    """Snapshot the finished run in the workspace into ``<directory>/<cell>.json`` (``reports/study/``)."""
    summary = read_json(paths.REPORTS / "summary.json")
    if cell.dataset not in summary:
        raise DataError(f"reports/summary.json has no {cell.dataset!r}: did the run for {cell.name} finish?")
    info = summary[cell.dataset]
    teacher, evidence = VARIANTS[cell.variant]
    if info.get("teacher") != teacher or info["fraction"] != cell.fraction or info.get("seed") != cell.seed \
            or bool(info.get("student_evidence")) != evidence:
        raise DataError(f"reports/summary.json was made by another configuration than {cell.name}: {info}")
    rows = {}
    for name, row in info["rows"].items():
        rows[name] = {k: row.get(k) for k in ("accuracy", "ci_low", "ci_high", "n", "train_seconds", "eval_seconds",
                                              "train_examples", "cost", "device")}
        if name in METHODS:
            correct = _correct_by_id(paths.predictions(cell.dataset, name))
        else:
            correct = teacher_correct(cell.dataset, teacher)
        rows[name]["correct"] = {k: int(v) for k, v in sorted(correct.items())}
    snapshot = {"cell": cell.name, "dataset": cell.dataset, "variant": cell.variant, "teacher": teacher,
                "student_evidence": evidence, "fraction": cell.fraction, "seed": cell.seed,
                "train_examples": info["train_examples"], "eval_examples": info["eval_examples"],
                "commit": _git("rev-parse", "HEAD"), "overrides": cell.overrides(), "rows": rows,
                "params": _params_snapshot(load_params()), "machine": describe(),
                "teacher_unparsed": info.get("teacher_unparsed")}
    out = directory / f"{cell.name}.json"
    write_json(out, snapshot)
    log(f"study: {cell.name} collected into {out}")
    return out


def run(cells: list[Cell], queue: bool = False) -> None:
    for cell in cells:
        if (STUDY / f"{cell.name}.json").exists():
            log(f"study: {cell.name} already collected; skipped")
            continue
        log(f"study: {'queueing' if queue else 'running'} {cell.name}: {' '.join(cell.command(queue))}")
        subprocess.run(cell.command(queue), check=True)
        if not queue:
            collect(cell)


def committed_snapshot(cell: Cell) -> Path:
    """The committed snapshot a rerun of ``cell`` is compared with; an error if there is none."""
    path = STUDY / f"{cell.name}.json"
    if not path.exists():
        raise DataError(f"{path} does not exist: {cell.name} has no committed snapshot to rerun "
                        "against (`study run` runs a new cell)")
    return path


def rerun_cell(cell: Cell, into: Path = RERUNS, push: str | None = None) -> bool:
    """Train a committed cell again and compare; push the experiment only if it reproduced exactly."""
    committed = read_json(committed_snapshot(cell))
    # -f: every stage runs again (the run cache would restore the students instead of retraining them),
    # and an experiment of the same name is replaced.
    command = [*cell.command(), "-f"]
    log(f"study: rerunning {cell.name}: {' '.join(command)}")
    subprocess.run(command, check=True)
    lines, same = compare_lines(committed, read_json(collect(cell, into)))
    print("\n".join(lines), flush=True)
    if push and same:
        log(f"study: pushing {cell.name} to git remote {push!r} and its outputs to the default DVC remote")
        subprocess.run(["dvc", "exp", "push", push, cell.name], check=True)
    elif push:
        log(f"study: {cell.name} NOT pushed: the rerun differs from the committed snapshot. If the committed "
            f"run's checkpoints are lost, make the rerun the cell's run instead: `python -m ragdistill.study adopt "
            f"{into / (cell.name + '.json')}`, then `dvc exp push {push} {cell.name}`")
    return same


def check_remote(remote: str | None = None, directory: Path = STUDY) -> list[str]:
    """Per committed cell, whether a DVC remote (default: the default one) holds its students' checkpoints
    as its experiment's ``dvc.lock`` names them; prints a line per cell and returns the cells that fail."""
    from ragdistill.remote import default_remote, experiment_refs, missing_on_remote

    snapshots = load_snapshots(directory)
    if not snapshots:
        raise DataError(f"{directory}: no committed snapshots to check")
    where = remote or default_remote()
    refs_by_cell = experiment_refs()  # one git call for every cell
    failing = []
    for snapshot in tqdm(snapshots, desc=f"cells checked on DVC remote {where!r}", unit="cell"):
        cell = snapshot["cell"]
        checkpoints = [paths.model_dir(snapshot["dataset"], method).as_posix() for method in METHODS]
        refs = refs_by_cell.get(cell, [])
        # A cell rerun from another baseline has several refs; any one that is whole can be pulled.
        missing = {ref: missing_on_remote(ref, checkpoints, remote) for ref in refs}
        whole = [ref for ref, gone in missing.items() if not gone]
        if whole:
            tqdm.write(f"{cell}: all {len(checkpoints)} student checkpoints on the remote ({whole[-1]})")
            continue
        failing.append(cell)
        if not refs:
            tqdm.write(f"{cell}: NO experiment ref in this clone (`git fetch origin 'refs/exps/*:refs/exps/*'` "
                       "brings those of origin)")
        for ref, gone in missing.items():
            tqdm.write(f"{cell}: NOT on the remote: {', '.join(gone)} ({ref})")
    print(f"{len(snapshots) - len(failing)} of {len(snapshots)} committed cells have every student checkpoint "
          f"on DVC remote {where!r}" + (f"; missing: {', '.join(failing)}" if failing else ""), flush=True)
    return failing


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
    replaced = {"commit": committed.get("commit"), "machine": committed.get("machine"),
                "rows": {row["row"]: {"accuracy": row["committed"], "differ": row["differ"], "n": row["n"]}
                         for row in rows}}
    write_json(path, {**rerun, "replaces": [*committed.get("replaces", []), replaced]})
    log(f"study: {path} now holds the rerun from {rerun_path} (the run it replaces is recorded under 'replaces'); "
        f"questions scored differently: " + ", ".join(f"{row['row']} {row['differ']}" for row in rows))
    return path


def compare(committed: dict, rerun: dict) -> list[dict]:
    """Row by row: both accuracies and the questions the two runs of one cell answered differently."""
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
    lines = [f"{committed['cell']}: committed run at {committed.get('commit', '?')[:12]} on "
             f"{_machine_label(committed.get('machine'))}; rerun at {rerun.get('commit', '?')[:12]} on "
             f"{_machine_label(rerun.get('machine'))}"]
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


# ---- the report ---------------------------------------------------------------------------------------

def load_snapshots(directory: Path = STUDY) -> list[dict]:
    return [read_json(p) for p in sorted(directory.glob("*.json"))]


def _student_label(method: str, teacher: str, evidence: bool) -> str:
    label = method if method == "finetune" else f"{method} ({teacher} teacher)"
    return label + (" + student reads evidence" if evidence else "")


def table_rows(snapshots: list[dict], dataset: str, fraction: float) -> dict[str, dict]:
    """Rows of one table (one dataset, one fraction): per row, the per-seed runs with per-question
    correctness. A finetune student is the same whatever the teacher, so its runs are merged."""
    rows: dict[str, dict] = {}
    for snap in snapshots:
        if snap["dataset"] != dataset or snap["fraction"] != fraction:
            continue
        for name, row in snap["rows"].items():
            if name.startswith("teacher"):
                if snap["student_evidence"]:
                    continue  # the same teacher as the variant without student evidence
                retrieval = ", retrieval" if snap["teacher"] == "rag" else ""
                label, key = f"teacher: {snap['teacher']} (few-shot{retrieval})", None
            else:
                label, key = _student_label(name, snap["teacher"], snap["student_evidence"]), snap["seed"]
            entry = rows.setdefault(label, {"runs": {}, "machines": {}})
            entry["runs"].setdefault(key, row)
            entry["machines"].setdefault(key, _machine_label(snap.get("machine")))
    return rows


def machine_note(rows: dict[str, dict]) -> str | None:
    """Where a table's student runs come from more than one machine, which machine ran what: the
    latency column is a median over seeds, and latencies compare only within one machine."""
    by_machine: dict[str, dict[tuple, list[str]]] = {}
    for label, entry in rows.items():
        seeds = {}
        for seed, machine in entry.get("machines", {}).items():
            if seed is not None:
                seeds.setdefault(machine, []).append(seed)
        for machine, its_seeds in seeds.items():
            by_machine.setdefault(machine, {}).setdefault(tuple(sorted(its_seeds)), []).append(label)
    if len(by_machine) < 2:
        return None

    def ran(seeds: tuple, labels: list[str]) -> str:
        return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))} of {', '.join(labels)}"

    parts = [f"on {machine}: " + "; ".join(ran(*group) for group in groups.items())
             for machine, groups in sorted(by_machine.items())]
    return ("Student runs of this table come from more than one machine, so compare their latencies only "
            "within one machine: " + "; and ".join(parts) + ".")


def _mean_correct(entry: dict) -> tuple[list[str], np.ndarray]:
    """Question ids and per-question correctness averaged over the entry's seeds."""
    runs = list(entry["runs"].values())
    ids = sorted(runs[0]["correct"])
    for run_row in runs[1:]:
        if sorted(run_row["correct"]) != ids:
            raise DataError("runs of one row were scored on different questions")
    return ids, np.mean([[run_row["correct"][i] for i in ids] for run_row in runs], axis=0)


MAJORITY = "majority answer"


def majority_entry(train: list[Example], evaluation: list[Example], fraction: float, split_seed: int
                   ) -> tuple[dict, str] | None:
    """The label-prior baseline of one table: every evaluation question gets the answer position most
    common among the training questions the students learned from (the same subset: ``fraction`` and
    ``split_seed``). Chosen on training labels only, so nothing is tuned on the evaluation split.
    Returns (a table entry, a sentence saying what it answers), or None for tasks without choices."""
    chosen, _ = choose_training(train, fraction, 0.0, split_seed)
    positions = Counter(e.choices.index(e.label) for e in chosen if e.choices and e.label in e.choices)
    if not positions or any(not e.choices for e in evaluation):
        return None
    position, count = positions.most_common(1)[0]
    correct = {e.id: int(len(e.choices) > position and e.choices[position] == e.label) for e in evaluation}
    letter = chr(ord("a") + position)
    if len({tuple(e.choices) for e in evaluation}) == 1:
        what = f'({letter}) "{evaluation[0].choices[position]}", the most common gold answer'
    else:
        what = f"with choice ({letter}), the most common gold position"
    note = (f"{MAJORITY}: every question answered {what} among the {len(chosen)} training questions "
            f"({count / len(chosen):.0%} of them).")
    return {"runs": {None: {"accuracy": float(np.mean(list(correct.values()))), "correct": correct}},
            "position": position}, note


def majority_share_line(entries: dict[str, dict], evaluation: list[Example], position: int) -> str | None:
    """For two-choice tasks: how often each student gives the majority answer, per seed. Students are scored
    by choice, so a wrong answer is the other choice and the share follows from gold labels and correctness
    alone. (Teachers are left out: an unparsed teacher answer is wrong without being the other choice.)"""
    if any(len(e.choices or []) != 2 for e in evaluation):
        return None
    is_majority = {e.id: e.choices[position] == e.label for e in evaluation}
    parts = []
    for label, entry in entries.items():
        if label == MAJORITY or label.startswith("teacher"):
            continue
        shares = [np.mean([bool(c) == is_majority[i] for i, c in run_row["correct"].items() if i in is_majority])
                  for run_row in entry["runs"].values()]
        parts.append(f"{label} {'/'.join(f'{100 * s:.0f}' for s in shares)}")
    choice = evaluation[0].choices[position]
    return f'Share of questions the students answered "{choice}" (%, per seed): ' + "; ".join(parts) + "."


def load_answer_key(dataset: str, root: str | os.PathLike) -> tuple[list[Example], list[Example]] | None:
    """(training, evaluation) questions with gold labels, for the majority-answer rows; None (with a log
    line) where the data directory is missing, so that the rest of the report still regenerates."""
    try:
        directory = resolve_data_root(root)
        return load_dataset(dataset, directory, "train"), load_dataset(dataset, directory, "eval")
    except (FileNotFoundError, DataError) as error:
        log(f"study: no majority-answer row for {dataset}: {error}")
        return None


def _table_majority(entries: dict[str, dict], answer_key: tuple[list[Example], list[Example]], snapshot: dict
                    ) -> tuple[dict, str] | None:
    """``majority_entry`` for the table of ``snapshot``'s dataset and fraction, or None (with a log line)
    where the runs were scored on other questions than the data directory holds, so it cannot be paired."""
    split_seed = (snapshot.get("params") or {}).get("split_seed", 0)
    majority = majority_entry(*answer_key, snapshot["fraction"], split_seed)
    scored, _ = _mean_correct(next(iter(entries.values())))
    if majority and sorted(majority[0]["runs"][None]["correct"]) != scored:
        log(f"study: no majority-answer row for {snapshot['dataset']} at {snapshot['fraction']:g}: the runs were "
            "scored on other evaluation questions than the data directory holds")
        return None
    return majority


COST_MEASURES = ("latency_s", "params", "peak_rss_mb", "weights_bytes")


def row_cost(entry: dict) -> dict[str, float | None]:
    """Deployment cost of a row: per measure, the median over the runs (seeds) that recorded it, so that one
    run timed while the machine was busy does not speak for the whole row. None: no run recorded it."""
    costs = [run_row.get("cost") or {} for run_row in entry["runs"].values()]
    values = {name: [cost[name] for cost in costs if cost.get(name) is not None] for name in COST_MEASURES}
    return {name: float(np.median(found)) if found else None for name, found in values.items()}


def summarize_row(entry: dict, resamples: int = 1000) -> dict:
    ids, correct = _mean_correct(entry)
    low, high = bootstrap_interval(correct, resamples)
    seeds = [run_row["accuracy"] for run_row in entry["runs"].values()]
    return {"accuracy": float(correct.mean()), "ci_low": low, "ci_high": high, "n": len(ids), "seeds": len(seeds),
            "seed_accuracies": seeds, **row_cost(entry)}


def _common_seeds(entry_a: dict, entry_b: dict) -> list[int] | None:
    """The seeds both student rows ran, where they ran different sets (e.g. a variant run at seed 0 only):
    comparing like with like removes the seed-to-seed spread from the difference. None: use every run."""
    seeds_a, seeds_b = set(entry_a["runs"]), set(entry_b["runs"])
    if None in seeds_a or None in seeds_b or seeds_a == seeds_b or not seeds_a & seeds_b:
        return None
    return sorted(seeds_a & seeds_b)


def paired(entry_a: dict, entry_b: dict) -> dict:
    seeds = _common_seeds(entry_a, entry_b)
    if seeds is not None:
        entry_a, entry_b = ({"runs": {k: e["runs"][k] for k in seeds}} for e in (entry_a, entry_b))
    ids_a, a = _mean_correct(entry_a)
    ids_b, b = _mean_correct(entry_b)
    if ids_a != ids_b:
        raise DataError("paired comparison of rows scored on different questions")
    # Two students that answer every question alike (e.g. both always say "no") are not "undecided".
    return {**paired_bootstrap(a.tolist(), b.tolist()), "identical": bool(np.array_equal(a, b)), "seeds": seeds}


COMPARISONS = (  # (a, b, what it answers)
    ("sbs (rag teacher)", "sbs (plain teacher)", "RAG teacher vs plain teacher, step-by-step students"),
    ("distill (rag teacher)", "distill (plain teacher)", "RAG teacher vs plain teacher, distilled students"),
    ("sbs (plain teacher)", "finetune", "step-by-step (plain teacher) vs finetuning"),
    ("sbs (rag teacher)", "finetune", "step-by-step (RAG teacher) vs finetuning"),
    ("sbs (rag teacher) + student reads evidence", "sbs (rag teacher)",
     "retrieval on the student's side too (sbs, RAG teacher)"),
    ("distill (rag teacher) + student reads evidence", "distill (rag teacher)",
     "retrieval on the student's side too (distill, RAG teacher)"),
    ("finetune + student reads evidence", "finetune", "retrieval on the student's side (finetune)"),
    ("teacher: rag (few-shot, retrieval)", "teacher: plain (few-shot)", "the teachers themselves"),
    ("sbs (rag teacher)", MAJORITY, "step-by-step (RAG teacher) vs the label prior"),
)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def verdict(result: dict) -> str:
    diff = f"{100 * result['difference']:+.1f} points [{100 * result['ci_low']:+.1f}, {100 * result['ci_high']:+.1f}]"
    if result.get("identical"):
        return f"{diff}: the same, right and wrong on the same questions"
    if result["ci_low"] > 0:
        return f"{diff}: better, the interval excludes zero"
    if result["ci_high"] < 0:
        return f"{diff}: worse, the interval excludes zero"
    return f"{diff}: not decided, the interval includes zero"


def build_report(snapshots: list[dict], figures: Path = paths.REPORTS / "figures", report_dir: Path = paths.REPORTS,
                 answer_keys: dict[str, tuple[list[Example], list[Example]] | None] | None = None) -> str:
    """The report's Markdown. ``answer_keys`` (per dataset: training and evaluation questions with gold
    labels) adds the majority-answer row; without it the tables hold the runs alone."""
    from ragdistill.plots import plot_accuracy_vs_fraction, plot_accuracy_vs_latency

    if not snapshots:
        raise DataError(f"{STUDY}: no collected runs; run `python -m ragdistill.study run` first")
    commits = sorted({s["commit"] for s in snapshots})
    seeds = sorted({s["seed"] for s in snapshots})
    lines = [
        "# Does a RAG teacher make a better student than the same LLM without retrieval?", "",
        "Generated by `python -m ragdistill.study report` from the runs collected in `reports/study/` "
        "(one JSON per `dvc exp run`); never edited by hand. Each cell's exact `dvc exp run -S ...` "
        "overrides are in its JSON.", "",
        "## Setup", "",
        *_setup_lines(snapshots),
        f"- Seeds (student training): {', '.join(map(str, seeds))}.",
        _compute_line(snapshots) + " Latency is milliseconds per question at batch 1 on the run's machine, the "
        "teacher's including its retrieval; a student row's latency and memory are the median over its seeds' runs.",
        f"- Commit(s) the runs came from: {', '.join(c[:12] for c in commits)}.",
        *_replacement_lines(snapshots),
        "- Intervals: 95% percentile bootstrap over questions (accuracy averaged over seeds per question); "
        "differences: paired bootstrap on the same questions, two-sided p-value.", ""]
    for dataset in sorted({s["dataset"] for s in snapshots}):
        fractions = sorted({s["fraction"] for s in snapshots if s["dataset"] == dataset})
        per_fraction = {}
        for fraction in fractions:
            entries = table_rows(snapshots, dataset, fraction)
            some = next(s for s in snapshots if s["dataset"] == dataset and s["fraction"] == fraction)
            key = (answer_keys or {}).get(dataset)
            majority = key and _table_majority(entries, key, some)
            if majority:
                entries = {MAJORITY: majority[0], **entries}
            summary = {label: summarize_row(entry) for label, entry in entries.items()}
            per_fraction[fraction] = (entries, summary)
            lines += [f"## {dataset}, {100 * fraction:g}% of the training set ({some['train_examples']} questions), "
                      f"{some['eval_examples']} evaluation questions", "",
                      "| row | accuracy % | 95% interval | seeds | per-seed % | latency ms/question "
                      "| parameters | peak memory MB |",
                      "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: |"]
            for label, row in summary.items():
                latency = "–" if row["latency_s"] is None else f"{1000 * row['latency_s']:,.0f}"
                params = "–" if row["params"] is None else f"{row['params'] / 1e6:,.0f}M"
                peak = "–" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:,.0f}"
                per_seed = ", ".join(_pct(a) for a in row["seed_accuracies"]) if row["seeds"] > 1 else "–"
                seeded = None not in entries[label]["runs"]
                lines.append(f"| {label} | {_pct(row['accuracy'])} | {_pct(row['ci_low'])}–{_pct(row['ci_high'])} "
                             f"| {row['seeds'] if seeded else '–'} | {per_seed} | {latency} | {params} | {peak} |")
            if majority:
                shares = majority_share_line(entries, key[1], majority[0]["position"])
                lines += ["", majority[1], *([shares] if shares else [])]
            machines = machine_note(entries)
            if machines:
                lines += ["", machines]
            lines += ["", "| comparison | difference (a − b), 95% interval | p |", "| --- | --- | ---: |"]
            for a, b, what in COMPARISONS:
                if a in entries and b in entries:
                    result = paired(entries[a], entries[b])
                    only = "" if result["seeds"] is None else \
                        f" (seed{'s' * (len(result['seeds']) > 1)} {', '.join(map(str, result['seeds']))} only)"
                    lines.append(f"| {what}: {a} − {b}{only} | {verdict(result)} | {result['p_value']:.3f} |")
            lines.append("")
        fraction_plot = plot_accuracy_vs_fraction(
            {f: s for f, (_, s) in per_fraction.items()}, figures / f"study-{dataset}-fraction.png", dataset)
        latency_plot = plot_accuracy_vs_latency(
            per_fraction[fractions[-1]][1], figures / f"study-{dataset}-latency.png",
            f"{dataset}, {100 * fractions[-1]:g}% of the training set")
        lines += [f"![accuracy against data fraction]({os.path.relpath(fraction_plot, report_dir)})", "",
                  f"![accuracy against latency]({os.path.relpath(latency_plot, report_dir)})", ""]
    return "\n".join(lines) + "\n"


def report(output: Path = paths.REPORTS / "REPORT.md", appendix: Path | None = None) -> Path:
    """Write the report; ``appendix`` (a hand-written Markdown file of conclusions) is appended verbatim."""
    snapshots = load_snapshots()
    root = load_params().data.root
    text = build_report(snapshots, answer_keys={d: load_answer_key(d, root) for d in {s["dataset"] for s in snapshots}})
    if appendix is not None and appendix.exists():
        text += "\n" + appendix.read_text(encoding="utf-8")
    write_text(output, text)
    log(f"study: wrote {output}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragdistill.study", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run (or queue) the grid's cells with dvc exp run, then collect")
    run_parser.add_argument("--dataset", required=True)
    run_parser.add_argument("--fractions", type=float, nargs="+", required=True)
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    run_parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    run_parser.add_argument("--queue", action="store_true", help="only queue the experiments")
    collect_parser = commands.add_parser("collect", help="snapshot the run now in the workspace")
    collect_parser.add_argument("cell", help="a cell name, e.g. openbookqa-rag-f0.1-s0")
    compare_parser = commands.add_parser("compare", help="did a rerun of a cell reproduce its committed snapshot?")
    compare_parser.add_argument("committed", type=Path, help="the committed snapshot, reports/study/<cell>.json")
    compare_parser.add_argument("rerun", type=Path, help="the rerun's snapshot (e.g. from a fresh clone)")
    rerun_parser = commands.add_parser("rerun", help="train committed cells again, compare, optionally push")
    rerun_parser.add_argument("cells", nargs="+", help="cell names, e.g. openbookqa-rag-f0.1-s0")
    rerun_parser.add_argument("--into", type=Path, default=RERUNS, help="where the reruns' snapshots go")
    rerun_parser.add_argument("--push", metavar="GIT_REMOTE",
                              help="dvc exp push each rerun that reproduced exactly (e.g. origin)")
    adopt_parser = commands.add_parser("adopt", help="make a rerun the cell's committed snapshot (its run was lost)")
    adopt_parser.add_argument("rerun", type=Path, help="the rerun's snapshot, e.g. .cache/study-reruns/<cell>.json")
    check_parser = commands.add_parser("check-remote", help="which committed cells' checkpoints a DVC remote holds")
    check_parser.add_argument("--remote", help="a DVC remote's name (default: the repository's default remote)")
    report_parser = commands.add_parser("report", help="write reports/REPORT.md from reports/study/")
    report_parser.add_argument("--appendix", type=Path, default=paths.REPORTS / "study" / "CONCLUSIONS.md")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(grid(args.dataset, args.fractions, args.seeds, args.variants), queue=args.queue)
    elif args.command == "collect":
        collect(parse_cell(args.cell))
    elif args.command == "rerun":
        cells = [parse_cell(name) for name in args.cells]
        try:
            for cell in cells:  # every name checked before hours of training start
                committed_snapshot(cell)
            reproduced = [rerun_cell(cell, args.into, args.push) for cell in cells]
        except DataError as error:
            raise SystemExit(f"study rerun: {error}") from None
        except subprocess.CalledProcessError as error:
            raise SystemExit(f"study rerun: `{' '.join(error.cmd)}` failed (exit {error.returncode})") from None
        return 0 if all(reproduced) else 1
    elif args.command == "adopt":
        try:
            adopt(args.rerun)
        except (DataError, OSError) as error:
            raise SystemExit(f"study adopt: {error}") from None
    elif args.command == "check-remote":
        from dvc.exceptions import DvcException

        try:
            return 1 if check_remote(args.remote) else 0
        except (DataError, OSError, subprocess.CalledProcessError, DvcException) as error:
            raise SystemExit(f"study check-remote: {error}") from None
    elif args.command == "compare":
        try:
            lines, same = compare_lines(read_json(args.committed), read_json(args.rerun))
        except (DataError, OSError) as error:
            raise SystemExit(f"study compare: {error}") from None
        print("\n".join(lines))
        return 0 if same else 1
    else:
        report(appendix=args.appendix)
    return 0


def parse_cell(name: str) -> Cell:
    """The cell a name like ``openbookqa-rag-student-evidence-f0.1-s0`` stands for."""
    try:
        head, fraction, seed = name.rsplit("-", 2)
        dataset, variant = head.split("-", 1)
        if variant not in VARIANTS or not fraction.startswith("f") or not seed.startswith("s"):
            raise ValueError
        return Cell(dataset, variant, float(fraction[1:]), int(seed[1:]))
    except ValueError:
        expected = f"<dataset>-<{'|'.join(VARIANTS)}>-f<fraction>-s<seed>"
        raise SystemExit(f"not a cell name: {name!r} (expected {expected})") from None


if __name__ == "__main__":
    sys.exit(main())
