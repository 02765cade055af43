"""The statistics of the report: per-row summaries over seeds, paired comparisons of two rows on the same
questions, the majority-answer baseline, and the words a comparison's verdict is given in.

A row's *entry* is ``{"runs": {seed: snapshot row}}`` (seed None for a row without seeds: a teacher, the
majority answer), as ``report.table_rows`` builds it."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ragdistill.data.example import Example
from ragdistill.data.registry import load_dataset, resolve_data_root
from ragdistill.data.split import choose_training
from ragdistill.evaluation.metrics import bootstrap_interval, paired_bootstrap
from ragdistill.io import DataError
from ragdistill.log import log

MAJORITY = "majority answer"
COST_MEASURES = ("latency_s", "params", "peak_rss_mb", "weights_bytes")


def _mean_correct(entry: dict) -> tuple[list[str], np.ndarray]:
    """Question ids and per-question correctness averaged over the entry's seeds."""
    runs = list(entry["runs"].values())
    ids = sorted(runs[0]["correct"])
    for run_row in runs[1:]:
        if sorted(run_row["correct"]) != ids:
            raise DataError("runs of one row were scored on different questions")
    return ids, np.mean([[run_row["correct"][i] for i in ids] for run_row in runs], axis=0)


def row_cost(entry: dict) -> dict[str, float | None]:
    """Deployment cost of a row: per measure, the median over the runs (seeds) that recorded it, so that one
    run timed while the machine was busy does not speak for the whole row. None: no run recorded it."""
    # A majority-answer row has no cost; a teacher that was never loaded has no size or memory.
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


def verdict(result: dict) -> str:
    diff = f"{100 * result['difference']:+.1f} points [{100 * result['ci_low']:+.1f}, {100 * result['ci_high']:+.1f}]"
    if result.get("identical"):
        return f"{diff}: the same, right and wrong on the same questions"
    if result["ci_low"] > 0:
        return f"{diff}: better, the interval excludes zero"
    if result["ci_high"] < 0:
        return f"{diff}: worse, the interval excludes zero"
    return f"{diff}: not decided, the interval includes zero"


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


def table_majority(entries: dict[str, dict], answer_key: tuple[list[Example], list[Example]], snapshot: dict
                   ) -> tuple[dict, str] | None:
    """``majority_entry`` for the table of ``snapshot``'s dataset and fraction, or None (with a log line)
    where the runs were scored on other questions than the data directory holds, so it cannot be paired."""
    majority = majority_entry(*answer_key, snapshot["fraction"], snapshot["params"]["split_seed"])
    scored, _ = _mean_correct(next(iter(entries.values())))
    if majority and sorted(majority[0]["runs"][None]["correct"]) != scored:
        log(f"study: no majority-answer row for {snapshot['dataset']} at {snapshot['fraction']:g}: the runs were "
            "scored on other evaluation questions than the data directory holds")
        return None
    return majority
