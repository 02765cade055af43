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
from ragdistill.study.deployment import load_deployment, shape_of
from ragdistill.study.plan import Plan, load_plan, primary_record, write_primary
from ragdistill.study.snapshots import STUDY, load_snapshots, machine_label
from ragdistill.study.stats import (
    INTERVAL_METHOD,
    MAJORITY,
    holm,
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


def _flat(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(snapshots: list[dict]) -> list[str]:
    """Each recorded parameter beyond the grid on which the runs differ: ``key: value (cells), value (cells)``."""
    flats = [(s["cell"], _flat(_beyond_the_grid(s["params"]))) for s in snapshots]
    keys = sorted({k for _, flat in flats for k in flat})
    lines = []
    for key in keys:
        by_value: dict[str, list[str]] = {}
        for cell, flat in flats:
            by_value.setdefault(repr(flat.get(key, "(not recorded)")), []).append(cell)
        if len(by_value) > 1:
            lines.append(f"`{key}`: " + "; ".join(f"{v} ({', '.join(cells)})" for v, cells in by_value.items()))
    return lines


def _setup_lines(snapshots: list[dict]) -> list[str]:
    """The setup as the runs recorded it; where the runs differ beyond the grid, say where."""
    first = snapshots[0]["params"]
    differ = differences(snapshots)
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
        f"- Training subset fixed by split seed {first['split_seed']}.",
        *([] if not differ else ["- **The runs differ in parameters beyond the grid; compare with care.** The setup "
                                 f"above is {snapshots[0]['cell']}'s. Differences:",
                                 *(f"  - {line}" for line in differ)])]


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


def with_deployment(summary: dict[str, dict], deployment: dict | None) -> dict[str, dict]:
    """The rows with the latency, memory and parameters of the one deployment run (``study deploy``) in
    place of those their own runs recorded, so that every row is measured alike; unchanged without one."""
    if deployment is None:
        return summary
    out = {}
    for label, row in summary.items():
        side = None if label == MAJORITY else deployment["shapes"].get(shape_of(label))
        out[label] = row if side is None else {**row, "latency_s": side["latency_s"], "params": side["params"],
                                                "peak_rss_mb": side["peak_rss_mb"]}
    return out


def _deployment_lines(dataset: str, deployment: dict | None) -> list[str]:
    if deployment is None:
        return [f"Latency and memory: each row as its own run recorded it (no `python -m ragdistill.study deploy "
                f"--dataset {dataset}` yet), so rows measured under different loads do not compare."]
    return [f"Latency, memory and parameters: measured together by `python -m ragdistill.study deploy` on "
            f"{deployment['measured']} ({machine_label(deployment['machine'])}): one process per model, batch 1, "
            f"the same {deployment['questions']} evaluation questions; a RAG teacher's time includes its retrieval. "
            "Every student is the same network answering the same prompt, so the student rows share one "
            "measurement, and the students that read evidence another (with their retrieval)."]


def _efficiency_table(summary: dict[str, dict], gate: dict[str, str | None]) -> list[str]:
    """Accuracy per second of latency and per GB of peak memory, for the rows that were timed."""
    timed = [(label + (f" ({gate[label]})" if gate.get(label) else ""), row) for label, row in summary.items()
             if row.get("latency_s") and row.get("peak_rss_mb")]
    if not timed:
        return []
    lines = ["| row | accuracy % | latency ms/question | peak memory MB | accuracy % per second | "
             "accuracy % per GB |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in sorted(timed, key=lambda item: item[1]["latency_s"]):
        accuracy = 100 * row["accuracy"]
        lines.append(f"| {label} | {accuracy:.1f} | {1000 * row['latency_s']:,.0f} | {row['peak_rss_mb']:,.0f} "
                     f"| {accuracy / row['latency_s']:,.0f} | {1024 * accuracy / row['peak_rss_mb']:,.1f} |")
    return lines


def _table(snapshots: list[dict], dataset: str, fraction: float,
           answer_keys: dict[str, tuple[list[Example], list[Example]] | None],
           deployments: dict[str, dict | None] | None = None) -> dict:
    """One table's rows, their summaries, the learning gate, and its paired comparisons."""
    entries = table_rows(snapshots, dataset, fraction)
    some = next(s for s in snapshots if s["dataset"] == dataset and s["fraction"] == fraction)
    key = answer_keys.get(dataset)
    majority = key and table_majority(entries, key, some)
    if majority:
        entries = {MAJORITY: majority[0], **entries}
    comparisons = [(a, b, what, paired(entries[a], entries[b])) for a, b, what in COMPARISONS
                   if a in entries and b in entries]
    return {"dataset": dataset, "fraction": fraction, "snapshot": some, "entries": entries, "key": key,
            "majority": majority,
            "summary": with_deployment({label: summarize_row(entry) for label, entry in entries.items()},
                                       (deployments or {}).get(dataset)),
            "gate": learning_gate(entries), "comparisons": comparisons}


def _primary(plan: Plan | None, tables: list[dict]) -> tuple[tuple | None, list[str], dict | None]:
    """The planned comparison: (its table and rows, or None), the report's lines on it, and the record
    ``primary.json`` gets (None until it has the planned seeds)."""
    if plan is None:
        return None, ["No analysis plan (`reports/study/plan.json`): no comparison was pre-specified, so every "
                      "comparison below is exploratory."], None
    if plan.fraction is None:
        return None, [f"Planned (`reports/study/PLAN.md`): {plan.comparison}, at least {plan.min_seeds} seeds, at "
                      "the data size where students learn. That size is not fixed yet, so no run below is the "
                      "primary comparison, and every comparison below is secondary."], None
    table = next((t for t in tables if (t["dataset"], t["fraction"]) == (plan.dataset, plan.fraction)), None)
    if table is None or plan.a not in table["entries"] or plan.b not in table["entries"]:
        return None, [f"Planned (`reports/study/PLAN.md`): {plan.comparison} at {100 * plan.fraction:g}% of the "
                      f"training set, at least {plan.min_seeds} seeds. **Not run yet.**"], None
    entries, gate = table["entries"], table["gate"]
    result = paired(entries[plan.a], entries[plan.b])
    seeds = min(len(entries[plan.a]["runs"]), len(entries[plan.b]["runs"]))
    learned = UNTRAINED_ROW in entries and not gate.get(plan.a) and not gate.get(plan.b)
    lines = [f"{plan.comparison}, {100 * plan.fraction:g}% of the training set, {seeds} seeds "
             f"(planned: at least {plan.min_seeds}): **{verdict(result)}**, p = {result['p_value']:.3f} "
             f"({_pct(table['summary'][plan.a]['accuracy'])}% against {_pct(table['summary'][plan.b]['accuracy'])}%)."]
    if not learned:
        lines.append("**Not interpretable: " + ("no untrained-student row was run" if UNTRAINED_ROW not in entries
                     else "a student of the comparison did not pass the learning gate") + ".**")
    if seeds < plan.min_seeds:
        lines.append("**Fewer seeds than planned: this is not yet the primary result.**")
        return (table, plan.a, plan.b), lines, None
    record = primary_record(plan, {**result, "a": table["summary"][plan.a]["accuracy"],
                                   "b": table["summary"][plan.b]["accuracy"], "learned": learned}, seeds)
    return (table, plan.a, plan.b), lines, record


def _family_key(table: dict, a: str, b: str) -> tuple:
    """A comparison's place in the Holm family. The teachers answer the same evaluation questions whatever the
    students' data size, so their comparison is one test per dataset, not one per table."""
    if a.startswith("teacher") and b.startswith("teacher"):
        return table["dataset"], a, b
    return table["dataset"], table["fraction"], a, b


def build_report(snapshots: list[dict], figures: Path = paths.REPORTS / "figures", report_dir: Path = paths.REPORTS,
                 answer_keys: dict[str, tuple[list[Example], list[Example]] | None] | None = None,
                 plan: Plan | None = None, deployments: dict[str, dict | None] | None = None) -> str:
    """The report's Markdown (``build_report_and_primary`` without the primary record)."""
    return build_report_and_primary(snapshots, figures, report_dir, answer_keys, plan, deployments)[0]


def build_report_and_primary(snapshots: list[dict], figures: Path = paths.REPORTS / "figures",
                             report_dir: Path = paths.REPORTS,
                             answer_keys: dict[str, tuple[list[Example], list[Example]] | None] | None = None,
                             plan: Plan | None = None, deployments: dict[str, dict | None] | None = None
                             ) -> tuple[str, dict | None]:
    """The report's Markdown and the primary result's record (None until the plan's comparison has run with
    its seeds). ``answer_keys`` (per dataset: training and evaluation questions with gold labels) adds the
    majority-answer row; without it the tables hold the runs alone. ``deployments`` (per dataset, what
    ``study deploy`` measured) gives every row's latency and memory from one run."""
    # Imported here: matplotlib loads only when a report is built.
    from ragdistill.plots import plot_accuracy_vs_fraction, plot_accuracy_vs_latency

    if not snapshots:
        raise DataError(f"{STUDY}: no collected runs; run `python -m ragdistill.study run` first")
    datasets = sorted({s["dataset"] for s in snapshots})
    deployments = deployments or {}
    tables = [_table(snapshots, dataset, fraction, answer_keys or {}, deployments) for dataset in datasets
              for fraction in sorted({s["fraction"] for s in snapshots if s["dataset"] == dataset})]
    primary, primary_lines, record = _primary(plan, tables)
    # Holm over every secondary comparison of the report together: one family, whatever the table.
    primary_key = primary and _family_key(primary[0], primary[1], primary[2])
    p_values = {key: r["p_value"] for t in tables for a, b, _, r in t["comparisons"]
                if (key := _family_key(t, a, b)) != primary_key}
    adjusted = dict(zip(p_values, holm(list(p_values.values())))) if p_values else {}

    commits = sorted({s["commit"] for s in snapshots})
    seeds = sorted({s["seed"] for s in snapshots})
    lines = [
        "# Does a RAG teacher make a better student than the same LLM without retrieval?", "",
        "Generated by `python -m ragdistill.study report` from the runs collected in `reports/study/` "
        "(one JSON per `dvc exp run`); never edited by hand. Each cell's exact `dvc exp run -S ...` "
        "overrides are in its JSON.", "",
        "## Primary comparison", "", *primary_lines, "",
        "## Setup", "",
        *_setup_lines(snapshots),
        f"- Seeds (student training): {', '.join(map(str, seeds))}.",
        _compute_line(snapshots) + " Latency is milliseconds per question at batch 1, the teacher's including its "
        "retrieval; where no deployment run was made for a dataset, a student row's latency and memory are the median "
        "over its seeds' runs.",
        f"- Commit(s) the runs came from: {', '.join(c[:12] for c in commits)}.",
        *_replacement_lines(snapshots),
        f"- Intervals: {INTERVAL_METHOD}. Secondary comparisons ({len(p_values)} in this report) are adjusted "
        "together with Holm's method; one counts as decided only if its interval excludes zero and its adjusted "
        "p is below 0.05. The learning gate uses the unadjusted interval.", ""]
    for dataset in datasets:
        its_tables = [t for t in tables if t["dataset"] == dataset]
        for table in its_tables:
            entries, summary, gate, some = table["entries"], table["summary"], table["gate"], table["snapshot"]
            lines += [f"## {dataset}, {100 * table['fraction']:g}% of the training set ({some['train_examples']} "
                      f"questions), {some['eval_examples']} evaluation questions", "",
                      "| row | accuracy % | 95% interval | seeds | per-seed % | latency ms/question "
                      "| parameters | peak memory MB |",
                      "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: |"]
            lines += [_row_line(label + (f" ({gate[label]})" if gate.get(label) else ""), row,
                                None not in entries[label]["runs"]) for label, row in summary.items()]
            lines += ["", _gate_line(gate, entries)]
            if table["majority"]:
                shares = majority_share_line(entries, table["key"][1], table["majority"][0]["position"])
                lines += ["", table["majority"][1], *([shares] if shares else [])]
            machines = machine_note(entries)
            if machines:
                lines += ["", machines]
            lines += ["", "| comparison | difference (a − b), 95% interval | p | Holm p |",
                      "| --- | --- | ---: | ---: |"]
            for a, b, what, result in table["comparisons"]:
                holm_p = adjusted.get(_family_key(table, a, b))
                only = "" if result["seeds"] is None else \
                    f" (seed{'s' * (len(result['seeds']) > 1)} {', '.join(map(str, result['seeds']))} only)"
                name = f"{what}: {a} − {b}{only}" + (" **(primary)**" if holm_p is None else "")
                lines.append(f"| {name} | {verdict(result, holm_p)}{_caveat(a, b, gate)} | {result['p_value']:.3f} "
                             f"| {'–' if holm_p is None else f'{holm_p:.3f}'} |")
            lines.append("")
        fraction_plot = plot_accuracy_vs_fraction(
            {t["fraction"]: t["summary"] for t in its_tables}, figures / f"study-{dataset}-fraction.png", dataset)
        latency_plot = plot_accuracy_vs_latency(
            its_tables[-1]["summary"], figures / f"study-{dataset}-latency.png",
            f"{dataset}, {100 * its_tables[-1]['fraction']:g}% of the training set")
        lines += [f"## {dataset}: what each row costs to deploy, {100 * its_tables[-1]['fraction']:g}% of the "
                  "training set", "", *_deployment_lines(dataset, deployments.get(dataset)), "",
                  *(_efficiency_table(its_tables[-1]["summary"], its_tables[-1]["gate"])
                    if deployments.get(dataset) else []), ""]
        lines += [f"![accuracy against data fraction]({os.path.relpath(fraction_plot, report_dir)})", "",
                  f"![accuracy against latency]({os.path.relpath(latency_plot, report_dir)})", ""]
    return "\n".join(lines) + "\n", record


def report(output: Path = paths.REPORTS / "REPORT.md", appendix: Path | None = None) -> Path:
    """Write the report; ``appendix`` (a hand-written Markdown file of conclusions) is appended verbatim."""
    snapshots = load_snapshots()
    root = load_params().data.root
    answer_keys = {d: load_answer_key(d, root) for d in {s["dataset"] for s in snapshots}}
    deployments = {d: load_deployment(d) for d in answer_keys}
    text, primary = build_report_and_primary(snapshots, plan=load_plan(), answer_keys=answer_keys,
                                             deployments=deployments)
    write_primary(primary)
    if appendix is not None and appendix.exists():
        text += "\n" + appendix.read_text(encoding="utf-8")
    write_text(output, text)
    log(f"study: wrote {output}")
    return output
