"""The grid's cells: what each one sets in ``params.yaml``, its ``dvc exp run`` command, and its name."""

from __future__ import annotations

from dataclasses import dataclass

from ragdistill.registry import METHODS, UNTRAINED

# Grid variants: the teacher, and whether the student reads evidence too. gold-fact is the positive control
# (each question's gold fact as its rationale: what a surely right rationale gives this student).
VARIANTS = {"plain": ("plain", False), "rag": ("rag", False), "rag-student-evidence": ("rag", True),
            "gold-fact": ("gold_fact", False)}


@dataclass(frozen=True)
class Cell:
    dataset: str
    variant: str
    fraction: float
    seed: int
    students: tuple[str, ...] | None = None  # only these of METHODS (study run --students); None: all

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.variant}-f{self.fraction:g}-s{self.seed}"

    def overrides(self) -> list[str]:
        teacher, evidence = VARIANTS[self.variant]
        return [f"datasets=[{self.dataset}]", f"teacher={teacher}", f"split.fraction.{self.dataset}={self.fraction}",
                f"train.seed={self.seed}", f"split.student_evidence={str(evidence).lower()}"]

    @property
    def methods(self) -> tuple[str, ...]:
        """The students the cell trains. Under gold_fact the teacher's labels are the gold labels, so distill
        would train finetune's model over again (same data, same seed): an hour of CPU for a copy. ``students``
        narrows them further (the name stays the cell's: its snapshot records which students it holds)."""
        return tuple(m for m in METHODS if (self.students is None or m in self.students)
                     and not (self.variant == "gold-fact" and m == "distill"))

    def targets(self) -> list[str]:
        """The dvc.yaml stages the cell runs, with what they need; none: the whole pipeline. A cell that
        skips a student leaves summarize out too (it reads every evaluation), and ``collect`` runs it."""
        if self.methods == tuple(METHODS):
            return []
        per_student = [f"{stage}@{self.dataset}-{m}" for m in self.methods for stage in ("evaluate", "cost")]
        return [f"evaluate-untrained@{self.dataset}", *per_student]

    def command(self, queue: bool = False, settings: tuple[str, ...] = ()) -> list[str]:
        """``settings``: more ``KEY=VALUE`` for every cell of a run (``study run --set``), after the cell's own."""
        sets = [arg for override in (*self.overrides(), *settings) for arg in ("-S", override)]
        return ["dvc", "exp", "run", "-n", self.name, *sets, *(["--queue"] if queue else []), *self.targets()]

    def rows(self, names: list[str]) -> list[str]:
        """Of a summary's rows, the ones this cell made: teachers, the untrained student and its students
        (a skipped student's evaluation can be left in the workspace by an earlier cell)."""
        return [n for n in names if n in self.methods or n == UNTRAINED or n not in METHODS]


def grid(dataset: str, fractions: list[float], seeds: list[int], variants: list[str],
         students: list[str] | None = None) -> list[Cell]:
    chosen = tuple(students) if students else None
    return [Cell(dataset, v, f, s, chosen) for f in fractions for s in seeds for v in variants]


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
