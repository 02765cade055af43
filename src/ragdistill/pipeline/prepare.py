"""Stage prepare: load one dataset into the normalized schema, with a record of its sources."""

from __future__ import annotations

import time
from pathlib import Path

from ragdistill import paths
from ragdistill.config import Params
from ragdistill.data.example import save_examples
from ragdistill.data.registry import dataset_spec, load_dataset, resolve_data_root, task_kind
from ragdistill.evaluation.metrics import accuracy_summary, is_correct
from ragdistill.io import sha256_file, write_json
from ragdistill.log import log


def _source_hashes(root: Path, dataset: str) -> dict[str, str]:
    folder = root / dataset_spec(dataset).source_dir
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def run(params: Params, dataset: str) -> dict:
    """Load and normalize one dataset; record the teacher's parse failures and its own accuracy."""
    started = time.perf_counter()
    root = resolve_data_root(params.data.root)
    # The output is a function of the data and the parameters alone (no path, no timing), so that a rerun
    # elsewhere, or with the data directory spelled another way, gives the same hash and reruns nothing else.
    summary: dict = {"dataset": dataset, "sources": _source_hashes(root, dataset)}
    kind = task_kind(dataset)
    for split, cap in (("train", params.data.max_train), ("eval", params.data.max_eval)):
        examples = load_dataset(dataset, root, split)
        if cap:
            examples = examples[:cap]
        save_examples(paths.prepared(dataset, split), examples)
        with_teacher = [e for e in examples if e.meta.get("teacher")]
        info = {"examples": len(examples), "with_teacher_output": len(with_teacher),
                "teacher_label_unparsed": sum(1 for e in with_teacher if not e.teacher_label),
                "teacher_rationale_empty": sum(1 for e in with_teacher if not e.rationale)}
        if with_teacher:
            correct = [is_correct(e.teacher_label, e.label, kind) for e in with_teacher]
            info["teacher_accuracy"] = accuracy_summary(correct, params.eval.bootstrap, params.eval.seed)
        summary[split] = info
        log(f"{dataset}/{split}: {len(examples)} examples; teacher labels unparsed: {info['teacher_label_unparsed']}")
    write_json(paths.PREPARED / dataset / "summary.json", summary)
    log(f"{dataset}: prepared from {root} in {time.perf_counter() - started:.1f} s")
    return summary
