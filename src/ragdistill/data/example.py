"""The one record every stage passes along."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragdistill.io import DataError, read_jsonl_numbered, write_jsonl


@dataclass
class Example:
    """One question with its gold label and, once a teacher has seen it, the teacher's output.

    ``label`` is what the student learns to write: the answer text for multiple choice (as the
    paper's CQA labels), an equation for SVAMP. ``choices`` is None for open-ended tasks.
    """

    id: str
    input: str
    label: str
    source: str
    choices: list[str] | None = None
    rationale: str | None = None
    teacher_label: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict, where: str = "") -> Example:
        for key in ("id", "input", "label", "source"):
            if key not in row:
                raise DataError(f"{where}: missing field {key!r}")
        if not str(row["input"]).strip():
            raise DataError(f"{where}: empty input")
        known = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        return cls(**known)


def gold_facts(example: Example) -> list[str]:
    """The facts the dataset gives as support for the gold answer (OpenBookQA's book fact, StrategyQA's
    facts), or an empty list."""
    facts = example.meta.get("facts") or ([example.meta["gold_fact"]] if example.meta.get("gold_fact") else [])
    return [str(f).strip() for f in facts if str(f).strip()]


def gold_fact_evidence(examples: list[Example]) -> dict[str, list[dict]]:
    """Per example with a gold fact, its gold facts as retrieved passages: what an oracle retriever returns."""
    return {e.id: [{"id": e.meta.get("gold_fact_id") or "gold", "text": fact} for fact in facts]
            for e in examples if (facts := gold_facts(e))}


def save_examples(path: str | Path, examples: list[Example]) -> int:
    return write_jsonl(path, (example.to_dict() for example in examples))


def load_examples(path: str | Path) -> list[Example]:
    return [Example.from_dict(row, f"{path}:{line}") for line, row in read_jsonl_numbered(path)]
