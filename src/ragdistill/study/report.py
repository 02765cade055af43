"""``reports/REPORT.md`` and its figures, built from the committed snapshots alone: the setup as the runs
recorded it, per dataset and training fraction a table of rows and a table of paired comparisons."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ragdistill import paths
from ragdistill.config import METHODS, load_params
from ragdistill.data.example import Example
from ragdistill.io import DataError, write_text
from ragdistill.log import log
from ragdistill.registry import UNTRAINED
from ragdistill.study.snapshots import STUDY, load_snapshots, machine_label
from ragdistill.study.stats import (
    MAJORITY,
    load_answer_key,
    majority_share_line,
    paired,
    summarize_row,
    table_majority,
    verdict,
)

UNTRAINED_ROW = "untrained student"

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
    ("sbs (gold_fact teacher)", "finetune", "the gold-fact control: sbs with each question's gold fact vs finetuning"),
    ("sbs (rag teacher)", MAJORITY, "step-by-step (RAG teacher) vs the label prior"),
)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


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
            if name == UNTRAINED:
                if snap["student_evidence"]:
                    continue  # its inputs carry evidence: not the control of the other rows
                label, key = UNTRAINED_ROW, None  # the same model in every cell: one run
            elif name.startswith("teacher"):
                if snap["student_evidence"]:
                    continue  # the same teacher as the variant without student evidence
                retrieval = ", retrieval" if snap["teacher"] == "rag" else ""
                label, key = f"teacher: {snap['teacher']} (few-shot{retrieval})", None
            else:
                label, key = _student_label(name, snap["teacher"], snap["student_evidence"]), snap["seed"]
            entry = rows.setdefault(label, {"runs": {}, "machines": {}})
            entry["runs"].setdefault(key, row)
            entry["machines"].setdefault(key, machine_label(snap["machine"]))
    return rows


def machine_note(rows: dict[str, dict]) -> str | None:
    """Where a table's student runs come from more than one machine, which machine ran what: the
    latency column is a median over seeds, and latencies compare only within one machine."""
    by_machine: dict[str, dict[tuple, list[str]]] = {}
    for label, entry in rows.items():
        seeds = {}
        for seed, machine in entry.get("machines", {}).items():  # the majority-answer row ran nowhere
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


def _compute_line(snapshots: list[dict]) -> str:
    # A machine the run did not record is what the report named for its runs; say so where it is counted.
    counts = Counter(machine_label(s["machine"]) + (
        "" if s["machine"]["recorded"] else " (not recorded by the run itself)")
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
        parts.append(f"`{snapshot['cell']}` (earlier run on {machine_label(earlier['machine'])}, commit "
                     f"{earlier['commit'][:12]}; questions scored differently: {', '.join(changes) or 'none'})")
    return [f"- Retrained cells ({len(replaced)}): a rerun replaced an earlier run of the cell whose checkpoints "
            "were lost; the tables show the rerun, whose checkpoints are the ones pushed to the DVC remote: "
            + "; ".join(parts) + "."]


def _beyond_the_grid(recorded: dict) -> dict:
    """A run's recorded parameters less the grid's own (the students' seed)."""
    return {**recorded, "train": {k: v for k, v in recorded["train"].items() if k != "seed"}}


def _setup_lines(snapshots: list[dict]) -> list[str]:
    """The setup as the runs recorded it; where the runs differ beyond the grid, say so."""
    first = snapshots[0]["params"]
    same = all(_beyond_the_grid(s["params"]) == _beyond_the_grid(first) for s in snapshots)
    teacher, student, train, retrieval = first["teacher_model"], first["student"], first["train"], first["retrieval"]
    devices = sorted({row["device"] for s in snapshots for name, row in s["rows"].items() if name in METHODS})
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


CONTROLS = {UNTRAINED_ROW: "did not learn", MAJORITY: "not above the majority answer"}


def learning_gate(entries: dict[str, dict]) -> dict[str, str | None]:
    """Per student row, the first control row of the table it does not beat (paired, the 95% interval above
    zero), as the words that mark it ("did not learn", "not above the majority answer"); None when it beats
    every control present. Empty when the table has no control row."""
    controls = [name for name in CONTROLS if name in entries]
    if not controls:
        return {}
    return {label: next((CONTROLS[c] for c in controls if paired(entry, entries[c])["ci_low"] <= 0), None)
            for label, entry in entries.items() if label not in CONTROLS and not label.startswith("teacher")}


def _gate_line(gate: dict[str, str | None], entries: dict[str, dict]) -> str:
    no_untrained = ("" if UNTRAINED_ROW in entries else
                    "**No untrained-student row in these runs**, so no student here is shown to have learned")
    if not gate:
        return no_untrained + ": the rows are not evidence for or against a teacher."
    against = " and the ".join(name for name in CONTROLS if name in entries)
    failed = {mark: [label for label, m in gate.items() if m == mark] for mark in CONTROLS.values()}
    verdicts = [f"**{mark}: {', '.join(labels)}**" for mark, labels in failed.items() if labels]
    text = (f"Learning gate (paired against the {against}, 95%): "
            + ("; ".join(verdicts) + "; no comparison should rest on these rows." if verdicts
               else f"every student row beats the {against}."))
    return f"{no_untrained}. {text}" if no_untrained else text


def _caveat(a: str, b: str, gate: dict[str, str | None]) -> str:
    """What a comparison of rows ``a`` and ``b`` rests on, when either failed the learning gate."""
    def verb(mark: str, plural: bool) -> str:  # "did not learn", or "is/are not above the majority answer"
        return mark if not mark.startswith("not ") else ("are " if plural else "is ") + mark

    compared = {CONTROLS[x] for x in (a, b) if x in CONTROLS}  # "sbs − majority answer" says so itself
    weak = [(x, gate[x]) for x in (a, b) if gate.get(x) and gate[x] not in compared]
    if not weak:
        return ""
    if len({mark for _, mark in weak}) == 1:
        return f" (rests on {' and '.join(x for x, _ in weak)}, which {verb(weak[0][1], len(weak) > 1)})"
    return " (rests on " + " and ".join(f"{x}, which {verb(mark, False)}" for x, mark in weak) + ")"


def _row_line(label: str, row: dict, seeded: bool) -> str:
    latency = "–" if row["latency_s"] is None else f"{1000 * row['latency_s']:,.0f}"
    params = "–" if row["params"] is None else f"{row['params'] / 1e6:,.0f}M"
    peak = "–" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:,.0f}"
    per_seed = ", ".join(_pct(a) for a in row["seed_accuracies"]) if row["seeds"] > 1 else "–"
    return (f"| {label} | {_pct(row['accuracy'])} | {_pct(row['ci_low'])}–{_pct(row['ci_high'])} "
            f"| {row['seeds'] if seeded else '–'} | {per_seed} | {latency} | {params} | {peak} |")


def build_report(snapshots: list[dict], figures: Path = paths.REPORTS / "figures", report_dir: Path = paths.REPORTS,
                 answer_keys: dict[str, tuple[list[Example], list[Example]] | None] | None = None) -> str:
    """The report's Markdown. ``answer_keys`` (per dataset: training and evaluation questions with gold
    labels) adds the majority-answer row; without it the tables hold the runs alone."""
    # Imported here: matplotlib loads only when a report is built.
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
            majority = key and table_majority(entries, key, some)
            if majority:
                entries = {MAJORITY: majority[0], **entries}
            summary = {label: summarize_row(entry) for label, entry in entries.items()}
            per_fraction[fraction] = (entries, summary)
            lines += [f"## {dataset}, {100 * fraction:g}% of the training set ({some['train_examples']} questions), "
                      f"{some['eval_examples']} evaluation questions", "",
                      "| row | accuracy % | 95% interval | seeds | per-seed % | latency ms/question "
                      "| parameters | peak memory MB |",
                      "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: |"]
            gate = learning_gate(entries)
            lines += [_row_line(label + (f" ({gate[label]})" if gate.get(label) else ""), row,
                                None not in entries[label]["runs"]) for label, row in summary.items()]
            lines += ["", _gate_line(gate, entries)]
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
                    caveat = _caveat(a, b, gate)
                    lines.append(f"| {what}: {a} − {b}{only} | {verdict(result)}{caveat} | {result['p_value']:.3f} |")
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
