"""The research grid: do students of a RAG teacher beat students of a plain teacher?

A *cell* of the grid is one ``dvc exp run`` with these parameters: ``teacher`` (``plain`` or ``rag``: the same
LLM, without and with retrieved evidence); ``split.fraction.<dataset>`` (the share of the training questions
the students learn from); ``train.seed`` (the students' seed; the training subset stays fixed by
``split.seed``, so every seed reuses the same teacher replies); ``split.student_evidence`` (whether the
students also read the retrieved evidence, in training and test).

Each run trains and scores ``finetune``, ``distill`` and ``sbs``; ``collect`` snapshots what it measured into
``reports/study/<cell>.json``, which is committed, and ``report`` builds ``reports/REPORT.md`` and its figures
from those snapshots alone (its majority-answer rows also read the gold labels from the data directory).

    python -m ragdistill.study run --dataset openbookqa --fractions 0.1 --seeds 0
    python -m ragdistill.study report

``python -m ragdistill.study --help`` lists the other subcommands (collect, compare, rerun, adopt,
check-remote).
"""

from ragdistill.config import METHODS
from ragdistill.study.cli import main
from ragdistill.study.experiments import check_remote, rerun_cell, run
from ragdistill.study.grid import VARIANTS, Cell, grid, parse_cell
from ragdistill.study.report import build_report, machine_note, report, table_rows
from ragdistill.study.snapshots import (
    RERUNS,
    STUDY,
    adopt,
    collect,
    committed_snapshot,
    compare,
    compare_lines,
    load_snapshots,
    machine_label,
)
from ragdistill.study.stats import majority_entry, paired, row_cost, summarize_row, verdict

__all__ = ["METHODS", "RERUNS", "STUDY", "VARIANTS", "Cell", "adopt", "build_report", "check_remote", "collect",
           "committed_snapshot", "compare", "compare_lines", "grid", "load_snapshots", "machine_label",
           "machine_note", "main", "majority_entry", "paired", "parse_cell", "report", "rerun_cell", "row_cost",
           "run", "summarize_row", "table_rows", "verdict"]
