"""CommonsenseQA and SVAMP in the layout released with *Distilling Step-by-Step*.

``<root>/dss/<name>/<name>_{train,test}.json`` (JSON lines) and ``<root>/dss/<name>/llm/
{train,test}_CoT_<i>.json`` (lists of PaLM-540B few-shot completions, in row order). The public
source is the ``datasets.zip`` of github.com/google-research/distilling-step-by-step
(see ``ragdistill.data.download``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ragdistill.data.example import Example
from ragdistill.evaluation.arith import try_eval
from ragdistill.io import DataError, read_json, read_json_or_jsonl_numbered

LETTERS = "abcdefghij"


def parse_cqa_completion(text: str) -> tuple[str, str | None]:
    """Split a PaLM completion into rationale and answer text, as the paper's code does:
    cut the run-on few-shot block at "Q:", split at "So the answer is", take the text after "(x)".
    Returns (rationale, None) when no label can be read."""
    body = text.split("Q:")[0].rstrip()
    if "So the answer is" not in body:
        return body.strip(), None
    rationale, tail = body.split("So the answer is", 1)
    parts = re.split(r"\(.\)", tail)
    if len(parts) < 2 or not parts[1].strip():
        return rationale.strip(), None
    label = parts[1].strip()
    label = label[:-1] if label.endswith(".") else label
    return rationale.strip(), label.strip() or None


def parse_svamp_completion(text: str) -> tuple[str, str | None]:
    """Rationale and equation from "... The answer is (84 / 2)."; None when there is no equation."""
    body = text.split("Q:")[0].rstrip()
    if "The answer is" not in body:
        return body.strip(), None
    rationale, tail = body.split("The answer is", 1)
    found = re.findall(r"\((.*?)\)", tail)
    # The equation may itself contain parentheses: take the widest balanced span when it parses.
    start, end = tail.find("("), tail.rfind(")")
    if start != -1 and end > start and try_eval(tail[start : end + 1]) is not None:
        inner = tail[start + 1 : end].strip()
        # Drop the outer pair only when it encloses the whole equation: "(19 - 6) + (18 - 15)" keeps it.
        return rationale.strip(), inner if try_eval(inner) is not None else tail[start : end + 1].strip()
    return rationale.strip(), (found[0].strip() or None) if found else None


def format_choices(question: str, choices: list[str]) -> str:
    lines = [f"({LETTERS[i]}) {choice}" for i, choice in enumerate(choices)]
    return question.strip() + "\nAnswer Choices:\n" + "\n".join(lines)


def _completions(directory: Path, split: str) -> list[str] | None:
    files = sorted(directory.glob(f"{split}_CoT_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not files:
        return None
    completions: list[str] = []
    for file in files:
        chunk = read_json(file)
        if not isinstance(chunk, list):
            raise DataError(f"{file}:1: expected a JSON list of completions")
        completions.extend(str(c) for c in chunk)
    return completions


def _attach_teacher(examples: list[Example], directory: Path, split: str, parse) -> None:
    completions = _completions(directory / "llm", split)
    if completions is None:
        return
    if len(completions) != len(examples):
        raise DataError(
            f"{directory / 'llm'}: {len(completions)} {split} completions for {len(examples)} rows"
        )
    for example, completion in zip(examples, completions):
        example.rationale, example.teacher_label = parse(completion)
        example.meta["teacher"] = "palm-540b"


def load_cqa(root: Path, split: str) -> list[Example]:
    directory = root / "dss" / "cqa"
    path = directory / f"cqa_{split}.json"
    examples = []
    for line, row in read_json_or_jsonl_numbered(path):
        for key in ("id", "question", "choices", "answer"):
            if key not in row:
                raise DataError(f"{path}:{line}: missing field {key!r}")
        if not str(row["question"]).strip():
            raise DataError(f"{path}:{line}: empty question")
        choices = [str(c) for c in row["choices"]]
        if row["answer"] not in choices:
            raise DataError(f"{path}:{line}: answer {row['answer']!r} is not among the choices")
        examples.append(Example(
            id=str(row["id"]), input=format_choices(row["question"], choices), label=row["answer"],
            source="cqa", choices=choices,
        ))
    _attach_teacher(examples, directory, split, parse_cqa_completion)
    return examples


def load_svamp(root: Path, split: str) -> list[Example]:
    directory = root / "dss" / "svamp"
    path = directory / f"svamp_{split}.json"
    examples = []
    for line, row in read_json_or_jsonl_numbered(path):
        for key in ("input", "label"):
            if key not in row:
                raise DataError(f"{path}:{line}: missing field {key!r}")
        if not str(row["input"]).strip():
            raise DataError(f"{path}:{line}: empty question")
        if try_eval(row["label"]) is None:
            raise DataError(f"{path}:{line}: label {row['label']!r} is not an arithmetic expression")
        examples.append(Example(
            id=f"svamp-{split}-{line}", input=row["input"].strip(), label=row["label"].strip(), source="svamp",
        ))
    _attach_teacher(examples, directory, split, parse_svamp_completion)
    return examples
