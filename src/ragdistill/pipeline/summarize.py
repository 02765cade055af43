"""Stage summarize: a narrow metrics file for `dvc metrics`, the full table, the plot data, and the learning
gate: each student against the untrained student, paired on the same questions."""

from __future__ import annotations

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.evaluation.metrics import correct_by_id, paired_bootstrap
from ragdistill.io import atomic_open, read_json, write_json, write_text
from ragdistill.registry import METHODS, UNTRAINED


def learning_gate(dataset: str, students: list[str], resamples: int, seed: int) -> dict:
    """Each student's accuracy minus the untrained student's on the same questions, with a 95% paired
    bootstrap interval over questions (percent). A student learned when the interval's low end is above
    zero; no comparison of teachers should rest on one that did not."""
    def correct(method: str) -> dict[str, bool]:
        return correct_by_id(paths.predictions(dataset, method))

    base = correct(UNTRAINED)
    ids = sorted(base)
    rows = []
    for name in students:
        mine = correct(name)
        if sorted(mine) != ids:
            raise ValueError(f"{paths.predictions(dataset, name)}: not the questions of "
                             f"{paths.predictions(dataset, UNTRAINED)}; rerun the evaluate stages")
        test = paired_bootstrap([mine[i] for i in ids], [base[i] for i in ids], resamples, seed)
        change = {"diff": round(100 * test["difference"], 2), "low": round(100 * test["ci_low"], 2),
                  "high": round(100 * test["ci_high"], 2)}
        rows.append({"name": name, "accuracy": round(100 * sum(mine.values()) / len(ids), 2),
                     "minus_untrained": change, "learned": test["ci_low"] > 0})
    return {"dataset": dataset, "questions": len(ids),
            "untrained": {"accuracy": round(100 * sum(base.values()) / len(ids), 2)}, "rows": rows,
            "interval": "95% paired bootstrap over the evaluation questions, one trained model per row"}


def run(params: Params) -> dict:
    """One narrow metrics file for ``dvc metrics``, the full table beside it, and a plot table."""
    details, metrics, table = {}, {}, []
    for dataset in params.datasets:
        prepared = read_json(paths.PREPARED / dataset / "summary.json")
        split_info = read_json(paths.SPLITS / dataset / "summary.json")
        rows = {}
        teacher_report = read_json(paths.teacher_report(dataset, params.teacher))
        if teacher_report.get("eval"):
            rows[f"teacher-{params.teacher}"] = {**teacher_report["eval"], "method": f"teacher ({params.teacher})",
                                                 "cost": teacher_report.get("cost")}
        for method in (UNTRAINED, *METHODS):
            result_path = paths.eval_result(dataset, method)
            if result_path.exists():
                rows[method] = read_json(result_path)
                cost_path = paths.REPORTS / "cost" / f"{dataset}-{method}.json"
                if cost_path.exists():
                    rows[method]["cost"] = read_json(cost_path)
        learning = None
        if UNTRAINED in rows:
            trained = [name for name in rows if name in METHODS]
            learning = {**learning_gate(dataset, trained, params.eval.bootstrap, params.eval.seed),
                        # which run the rows are: "sbs" under a gold_fact teacher is the positive control
                        "teacher": params.teacher, "fraction": split_info["fraction"],
                        "train_examples": split_info["train"], "seed": params.train.seed}
            write_json(paths.REPORTS / "learning" / f"{dataset}.json", learning)
        unparsed = teacher_report.get("unparsed") or {
            s: prepared[s]["teacher_label_unparsed"] for s in ("train", "eval")}
        details[dataset] = {"fraction": split_info["fraction"], "train_examples": split_info["train"],
                            "eval_examples": split_info["eval"], "teacher": params.teacher,
                            "student_evidence": bool(split_info.get("student_evidence")),
                            "seed": params.train.seed, "teacher_unparsed": unparsed, "rows": rows,
                            "learning": learning}
        metrics[dataset] = {name: row["accuracy"] for name, row in rows.items()}
        for name, row in rows.items():
            table.append({"dataset": dataset, "variant": name, "fraction": split_info["fraction"],
                          "accuracy": row["accuracy"], "ci_low": row["ci_low"], "ci_high": row["ci_high"]})
    write_json(paths.REPORTS / "metrics.json", metrics)
    write_json(paths.REPORTS / "summary.json", details)
    with atomic_open(paths.REPORTS / "accuracy.csv") as handle:
        handle.write("dataset,variant,fraction,accuracy,ci_low,ci_high\n")
        for row in table:
            handle.write(",".join(str(row[k]) for k in ("dataset", "variant", "fraction", "accuracy",
                                                        "ci_low", "ci_high")) + "\n")
    write_text(paths.REPORTS / "RESULTS.md", results_markdown(details, params))
    return details


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _cost_cells(cost: dict | None) -> str:
    """Latency per question (ms), parameters (millions) and peak memory (MB), or dashes."""
    if not cost:
        return "– | – | –"
    latency = "–" if cost.get("latency_s") is None else f"{1000 * cost['latency_s']:.0f}"
    params = "–" if cost.get("params") is None else f"{cost['params'] / 1e6:,.0f}"
    peak = "–" if cost.get("peak_rss_mb") is None else f"{cost['peak_rss_mb']:,.0f}"
    return f"{latency} | {params} | {peak}"


def _gate_cell(row: dict | None) -> str:
    if row is None:
        return "–"
    change = row["minus_untrained"]
    return (f"{change['diff']:+.1f} [{change['low']:+.1f}, {change['high']:+.1f}]"
            + ("" if row["learned"] else " did not learn"))


def _overlap(a: dict, b: dict) -> bool:
    return a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]


def results_markdown(details: dict, params: Params) -> str:
    """The results table as Markdown, generated from the run (never edited by hand)."""
    lines = ["# Results of the last `dvc repro`", "",
             "Generated by the `summarize` stage from `reports/summary.json`; rerun with `dvc repro`.", "",
             f"Student `{params.student.model}`, {params.train.epochs:g} epoch(s), lr {params.train.lr:g}, "
             f"batch {params.train.batch_size}, alpha {params.train.alpha:g}, seed {params.train.seed}. "
             "Accuracy on the evaluation split with a 95% percentile-bootstrap interval "
             f"({params.eval.bootstrap} resamples).", ""]
    for dataset, info in details.items():
        lines += [f"## {dataset}: {info['train_examples']} training examples ({info['fraction']:.0%}), "
                  f"{info['eval_examples']} evaluation examples", "",
                  "| variant | accuracy % | 95% interval | minus untrained (95%) | train s | eval s | train tokens/s "
                  "| padding | latency ms | params M | peak MB |",
                  "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        gate = {row["name"]: row for row in (info["learning"] or {}).get("rows", [])}
        for name, row in info["rows"].items():
            lines.append(
                f"| {name} | {_pct(row['accuracy'])} | {_pct(row['ci_low'])}–{_pct(row['ci_high'])} | "
                f"{_gate_cell(gate.get(name))} | "
                f"{row.get('train_seconds', '–') or '–'} | {row.get('eval_seconds', '–') or '–'} | "
                f"{row.get('train_tokens_per_second', '–') or '–'} | "
                f"{_pct(row.get('padding_waste')) + '%' if row.get('padding_waste') is not None else '–'} | "
                f"{_cost_cells(row.get('cost'))} |")
        not_learned = [name for name, row in gate.items() if not row["learned"]]
        if not_learned:
            lines += ["", "**Did not learn** (not above the untrained student, paired, 95%): "
                      + ", ".join(not_learned) + ". No comparison of teachers rests on these rows."]
        elif info["learning"] is None:
            lines += ["", "No untrained-student row (stage evaluate-untrained): no student is shown to have learned."]
        students = [n for n in info["rows"] if n in METHODS]
        pairs = [(a, b) for i, a in enumerate(students) for b in students[i + 1:]]
        overlapping = [f"{a} and {b}" for a, b in pairs if _overlap(info["rows"][a], info["rows"][b])]
        lines += ["", f"Unparseable teacher labels: {info['teacher_unparsed']['train']} in train, "
                  f"{info['teacher_unparsed']['eval']} in eval."]
        if overlapping:
            lines.append("Intervals overlap (no winner claimed) for: " + "; ".join(overlapping) + ".")
        lines.append("")
    return "\n".join(lines) + "\n"
