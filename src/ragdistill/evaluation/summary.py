"""Stage logic of summarize: a narrow metrics file for `dvc metrics`, the full table, the plot data."""

from __future__ import annotations

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.io import atomic_open, read_json, write_json


def summarize(params: Params, methods: list[str]) -> dict:
    """One narrow metrics file for ``dvc metrics``, the full table beside it, and a plot table."""
    details, metrics, table = {}, {}, []
    for dataset in params.datasets:
        prepared = read_json(paths.PREPARED / dataset / "summary.json")
        split_info = read_json(paths.SPLITS / dataset / "summary.json")
        rows = {}
        teacher = prepared.get("eval", {}).get("teacher_accuracy")
        if teacher:
            rows["teacher-palm"] = {**teacher, "method": "teacher (PaLM-540B few-shot CoT)"}
        for method in methods:
            result_path = paths.eval_result(dataset, method)
            if result_path.exists():
                rows[method] = read_json(result_path)
        details[dataset] = {"fraction": split_info["fraction"], "train_examples": split_info["train"],
                            "eval_examples": split_info["eval"], "teacher_unparsed": {
                                s: prepared[s]["teacher_label_unparsed"] for s in ("train", "eval")},
                            "rows": rows}
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
    return details
