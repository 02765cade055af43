"""The statistics of the report: per-row summaries over seeds, paired comparisons of two rows on the same
questions, the Holm correction of the secondary comparisons, the majority-answer baseline, and the words a
comparison's verdict is given in.

A rerun of the study would retrain every student with its seeds and score it on questions drawn from the
same population, so the intervals resample both: a two-level (hierarchical) bootstrap draws the seeds with
replacement, then the questions with replacement. Two rows run at the same seeds are paired on them (the
same seed is the same training order), and every pair of rows is paired on the questions. p-values come
from a sign-flip permutation test of the per-question differences (scipy's ``permutation_test``).

A row's *entry* is ``{"runs": {seed: snapshot row}}`` (seed None for a row without seeds: a teacher, the
majority answer), as ``report.table_rows`` builds it."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
from scipy import stats

from ragdistill.data.example import Example
from ragdistill.data.registry import load_dataset, resolve_data_root
from ragdistill.data.split import choose_training
from ragdistill.io import DataError
from ragdistill.log import log

MAJORITY = "majority answer"
COST_MEASURES = ("latency_s", "params", "peak_rss_mb", "weights_bytes")
RESAMPLES = 2000
LEVEL = 0.95
INTERVAL_METHOD = (f"{LEVEL:.0%} two-level percentile bootstrap ({RESAMPLES} resamples of seeds, then of questions; "
                   "rows run at the same seeds are paired on them), sign-flip permutation p-value on the "
                   "per-question differences")


def correct_matrix(entry: dict) -> tuple[list[str], np.ndarray]:
    """Question ids and correctness as a (runs x questions) array, one row per seed in seed order."""
    runs = [entry["runs"][seed] for seed in _seed_order(entry)]
    ids = sorted(runs[0]["correct"])
    for run_row in runs[1:]:
        if sorted(run_row["correct"]) != ids:
            raise DataError("runs of one row were scored on different questions")
    return ids, np.array([[float(run_row["correct"][i]) for i in ids] for run_row in runs])


def _seed_order(entry: dict) -> list[int | None]:
    return sorted(entry["runs"], key=lambda seed: -1 if seed is None else seed)


def _seed_means(matrix: np.ndarray, questions: np.ndarray) -> np.ndarray:
    """(resamples x runs): each run's accuracy on each resample of the questions."""
    return np.stack([run[questions].mean(axis=1) for run in matrix], axis=1)


def _draw_seeds(rng: np.random.Generator, runs: int, resamples: int) -> np.ndarray:
    return rng.integers(0, runs, size=(resamples, runs))


def hierarchical_interval(matrix: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The accuracy's interval over a resample of seeds and of questions."""
    rng = np.random.default_rng(seed)
    questions = rng.integers(0, matrix.shape[1], size=(resamples, matrix.shape[1]))
    means = np.take_along_axis(_seed_means(matrix, questions), _draw_seeds(rng, len(matrix), resamples), axis=1)
    tail = (1 - LEVEL) / 2 * 100
    return tuple(float(np.percentile(means.mean(axis=1), q)) for q in (tail, 100 - tail))


def paired_hierarchical(a: np.ndarray, b: np.ndarray, same_seeds: bool, resamples: int = RESAMPLES,
                        seed: int = 0) -> dict:
    """Accuracy difference a - b of two rows scored on the same questions, its interval over a resample of
    questions (shared by both rows) and of seeds (shared where ``same_seeds``: row i of ``a`` and of ``b``
    trained at one seed), and the sign-flip permutation p-value of "no difference"."""
    if a.shape[1] != b.shape[1]:
        raise DataError("paired comparison of rows scored on different questions")
    rng = np.random.default_rng(seed)
    questions = rng.integers(0, a.shape[1], size=(resamples, a.shape[1]))
    seeds_a = _draw_seeds(rng, len(a), resamples)
    seeds_b = seeds_a if same_seeds else _draw_seeds(rng, len(b), resamples)
    diffs = (np.take_along_axis(_seed_means(a, questions), seeds_a, axis=1).mean(axis=1)
             - np.take_along_axis(_seed_means(b, questions), seeds_b, axis=1).mean(axis=1))
    per_question_a, per_question_b = a.mean(axis=0), b.mean(axis=0)
    tail = (1 - LEVEL) / 2 * 100
    return {"difference": float(per_question_a.mean() - per_question_b.mean()),
            "ci_low": float(np.percentile(diffs, tail)), "ci_high": float(np.percentile(diffs, 100 - tail)),
            "p_value": sign_flip_p(per_question_a, per_question_b, seed)}


def sign_flip_p(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 9999) -> float:
    """Two-sided p-value of "a and b are exchangeable on every question": each question's pair is swapped
    (its difference's sign flipped) at random."""
    if np.array_equal(a, b):
        return 1.0
    result = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                                    vectorized=True, n_resamples=resamples, alternative="two-sided",
                                    random_state=np.random.default_rng(seed))
    return float(result.pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the family-wise error stays at the level over all the p-values."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def row_cost(entry: dict) -> dict[str, float | None]:
    """Deployment cost of a row: per measure, the median over the runs (seeds) that recorded it, so that one
    run timed while the machine was busy does not speak for the whole row. None: no run recorded it."""
    # A majority-answer row has no cost; a teacher that was never loaded has no size or memory.
    costs = [run_row.get("cost") or {} for run_row in entry["runs"].values()]
    values = {name: [cost[name] for cost in costs if cost.get(name) is not None] for name in COST_MEASURES}
    return {name: float(np.median(found)) if found else None for name, found in values.items()}


def summarize_row(entry: dict) -> dict:
    ids, matrix = correct_matrix(entry)
    low, high = hierarchical_interval(matrix)
    seeds = [entry["runs"][seed]["accuracy"] for seed in _seed_order(entry)]
    return {"accuracy": float(matrix.mean()), "ci_low": low, "ci_high": high, "n": len(ids), "seeds": len(seeds),
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
    ids_a, a = correct_matrix(entry_a)
    ids_b, b = correct_matrix(entry_b)
    if ids_a != ids_b:
        raise DataError("paired comparison of rows scored on different questions")
    same_seeds = None not in entry_a["runs"] and _seed_order(entry_a) == _seed_order(entry_b)
    # Two students that answer every question alike (e.g. both always say "no") are not "undecided".
    return {**paired_hierarchical(a, b, same_seeds), "identical": bool(np.array_equal(a.mean(0), b.mean(0))),
            "seeds": seeds, "paired_seeds": same_seeds}


def verdict(result: dict, adjusted_p: float | None = None) -> str:
    """The comparison in words. ``adjusted_p``, for a secondary comparison: its Holm-adjusted p-value, which
    must also be below the level for the comparison to count as decided."""
    diff = f"{100 * result['difference']:+.1f} points [{100 * result['ci_low']:+.1f}, {100 * result['ci_high']:+.1f}]"
    if result.get("identical"):
        return f"{diff}: the same, right and wrong on the same questions"
    if result["ci_low"] <= 0 <= result["ci_high"]:
        return f"{diff}: not decided, the interval includes zero"
    if adjusted_p is not None and adjusted_p >= 1 - LEVEL:
        return f"{diff}: not decided after Holm's correction, though the interval excludes zero"
    return f"{diff}: {'better' if result['ci_low'] > 0 else 'worse'}, the interval excludes zero"


def majority_entry(train: list[Example], evaluation: list[Example], fraction: float, split_seed: int,
                   held_out: int = 0) -> tuple[dict, str] | None:
    """The label-prior baseline of one table: every evaluation question gets the answer position most
    common among the training questions the students learned from (the same subset: ``fraction`` and
    ``split_seed``). Chosen on training labels only, so nothing is tuned on the evaluation split.
    Returns (a table entry, a sentence saying what it answers), or None for tasks without choices."""
    chosen, _ = choose_training(train, fraction, 0.0, split_seed, held_out=held_out)
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
    majority = majority_entry(*answer_key, snapshot["fraction"], snapshot["params"]["split_seed"],
                              snapshot["params"].get("split_held_out", 0))
    scored, _ = correct_matrix(next(iter(entries.values())))
    if majority and sorted(majority[0]["runs"][None]["correct"]) != scored:
        log(f"study: no majority-answer row for {snapshot['dataset']} at {snapshot['fraction']:g}: the runs were "
            "scored on other evaluation questions than the data directory holds")
        return None
    return majority
