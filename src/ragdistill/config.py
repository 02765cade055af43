"""The schema of ``params.yaml``, checked before any model loads.

Each stage reads the file once with ``load_params``; a bad value stops it with one message that names
the key and what is allowed. The library itself never reads ``params.yaml``: stages pass typed values.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ragdistill.data.registry import DATASETS
from ragdistill.registry import BACKENDS, CORPORA, LABEL_POLICIES, METHODS, QUERIES, RETRIEVERS, TEACHERS

__all__ = ["METHODS", "ConfigError", "Params", "load_params", "stage_params", "validate"]

# Allowed values of the keys that are no extension point (those are in ragdistill.registry).
SCORINGS = ("auto", "choices", "generate")
SBS_LABELS = ("gold", "teacher")
BATCHINGS = ("paired", "rows")  # train.batching; ragdistill.students.trainer says what each does
PRECISIONS = ("fp32", "bf16")  # train.precision: full precision, or bfloat16 autocast over fp32 weights
OPTIONAL_NUMBERS = {"retrieval.min_score"}  # null or any number (other null defaults are whole-number caps)
# split.rationale_filter: sbs learns from every rationale, or only from those whose teacher label is the gold one
RATIONALE_FILTERS = ("all", "agree")


class ConfigError(ValueError):
    """A value in params.yaml is missing or not allowed."""


@dataclass
class DataParams:
    root: str = "../shared/data"
    max_train: int | None = None  # cap on training examples before the fraction (tiny profile)
    max_eval: int | None = None  # cap on evaluation examples (tiny profile)


@dataclass
class SplitParams:
    fraction: dict[str, float] = field(default_factory=dict)  # per dataset, in (0, 1]
    valid_size: float = 0.0  # share of the chosen training examples held out for validation
    seed: int = 0
    student_evidence: bool = False  # the student reads the retrieved evidence too (train and eval inputs)
    rationale_filter: str = "all"  # one of RATIONALE_FILTERS
    teacher_selection: int = 200  # training questions held out of every students' part, to choose the teacher on


@dataclass
class RetrievalParams:
    method: str = "dense"
    k: int = 3
    query: str = "question+choices"
    corpus: dict[str, str] = field(default_factory=dict)  # per dataset: openbook | strategyqa_facts | ...
    min_score: float | None = None  # drop retrieved passages scored below it by the retriever (None: keep k)


@dataclass
class TeacherModelParams:
    backend: str = "llama_cpp"
    model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"
    base_url: str = ""  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (backend openai)
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key; never the key itself
    concurrency: int = 4
    threads: int = 2
    max_new_tokens: int = 96
    demonstrations: int = 3
    label_policy: str = "keep"
    eval_examples: int | None = None  # score the teacher on the first N evaluation examples (None: all)


@dataclass
class StudentParams:
    model: str = "smollm2-135m-instruct"
    max_input_tokens: int = 192
    max_target_tokens: int = 96


@dataclass
class TrainParams:
    alpha: float = 0.5
    lr: float = 5e-5
    epochs: float = 3.0
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06
    patience: int = 1  # stop once this many validation scores in a row are below the best (0: never)
    seed: int = 0
    sbs_labels: str = "gold"
    batching: str = "paired"
    precision: str = "fp32"
    max_steps: int = -1


@dataclass
class EvalParams:
    scoring: str = "auto"
    max_new_tokens: int = 32
    batch_size: int = 16
    bootstrap: int = 1000
    seed: int = 0
    device: str = "auto"  # auto (cuda when there is one) | cpu | cuda | cuda:N


@dataclass
class CostParams:
    examples: int = 32  # evaluation examples timed one at a time for the deployment latency


@dataclass
class Params:
    datasets: list[str]
    teacher: str
    data: DataParams
    split: SplitParams
    retrieval: RetrievalParams
    teacher_model: TeacherModelParams
    student: StudentParams
    train: TrainParams
    eval: EvalParams
    cost: CostParams = field(default_factory=CostParams)

    def fraction(self, dataset: str) -> float:
        return self.split.fraction.get(dataset, 1.0)

    def corpus(self, dataset: str) -> str:
        """The dataset's retrieval corpus: ``retrieval.corpus.<dataset>``, else its registry default."""
        return self.retrieval.corpus.get(dataset, DATASETS[dataset].corpus)


class _Problems(list):
    """Every bad key of one params.yaml, collected so that one run names them all."""

    def bad(self, key: str, value: Any, allowed: str) -> None:
        self.append(f"{key} = {value!r} is not allowed; expected {allowed}")


def _section(cls: type, raw: Any, name: str, problems: _Problems) -> Any:
    """The dataclass of one section; a bad or unknown key is recorded and its default kept."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.bad(name, raw, "a mapping")
        return cls()
    known = {f.name: f for f in fields(cls)}
    for key in sorted(set(raw) - set(known)):
        problems.append(f"unknown key {name}.{key}; known keys: {', '.join(known)}")
    values = {}
    for key, value in raw.items():
        if key not in known:
            continue
        default = getattr(cls(), key)
        if isinstance(default, dict):
            if not isinstance(value, dict):
                problems.bad(f"{name}.{key}", value, "a mapping")
                continue
        elif default is None and f"{name}.{key}" in OPTIONAL_NUMBERS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                problems.bad(f"{name}.{key}", value, "null or a number")
                continue
            value = None if value is None else float(value)
        elif default is None:  # optional whole numbers (caps)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                problems.bad(f"{name}.{key}", value, "null or a whole number of at least 1")
                continue
        else:
            wanted = float if isinstance(default, float) else type(default)
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if wanted is float and isinstance(value, str):
                try:  # YAML reads 1e-4 (no dot) as a string
                    value = float(value)
                except ValueError:
                    pass
            if not isinstance(value, wanted) or isinstance(value, bool) != (wanted is bool):
                problems.bad(f"{name}.{key}", value, f"a {wanted.__name__}")
                continue
        values[key] = value
    return cls(**values)


def _check_range(problems: _Problems, key: str, value: float, low: float, high: float,
                 low_open: bool = False) -> None:
    if math.isnan(value) or (value <= low if low_open else value < low) or value > high:
        problems.bad(key, value, f"a number in {'(' if low_open else '['}{low}, {high}]")


SECTIONS = {"data": DataParams, "split": SplitParams, "retrieval": RetrievalParams,
            "teacher_model": TeacherModelParams, "student": StudentParams, "train": TrainParams,
            "eval": EvalParams, "cost": CostParams}


def validate(raw: Any, source: str = "params.yaml") -> Params:
    """Turn the parsed YAML into ``Params``, or raise one ``ConfigError`` that names every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    problems = _Problems()
    known = {"datasets", "teacher", *SECTIONS}
    for key in sorted(set(raw) - known):
        problems.append(f"unknown key {key!r}; known keys: {', '.join(sorted(known))}")
    datasets = raw.get("datasets", ["svamp"])
    if isinstance(datasets, str):
        datasets = [datasets]
    if not isinstance(datasets, list) or not datasets:
        problems.bad("datasets", datasets, "a non-empty list of dataset names")
        datasets = []
    for name in datasets:
        if name not in DATASETS:
            problems.bad("datasets", name, f"one of {', '.join(sorted(DATASETS))}")
    teacher = raw.get("teacher", "palm")
    if teacher not in TEACHERS:
        problems.bad("teacher", teacher, f"one of {', '.join(TEACHERS)}")
    sections = {name: _section(cls, raw.get(name), name, problems) for name, cls in SECTIONS.items()}
    params = Params(datasets=datasets, teacher=teacher, **sections)
    for name, value in params.split.fraction.items():
        if name not in DATASETS:
            problems.bad(f"split.fraction.{name}", value, f"keys among {', '.join(sorted(DATASETS))}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.bad(f"split.fraction.{name}", value, "a number in (0, 1]")
        else:
            _check_range(problems, f"split.fraction.{name}", value, 0.0, 1.0, low_open=True)
    _check_range(problems, "split.valid_size", params.split.valid_size, 0.0, 0.5)
    for key, value, allowed in (("retrieval.method", params.retrieval.method, RETRIEVERS),
                                ("retrieval.query", params.retrieval.query, QUERIES),
                                ("teacher_model.backend", params.teacher_model.backend, BACKENDS),
                                ("teacher_model.label_policy", params.teacher_model.label_policy, LABEL_POLICIES),
                                ("train.sbs_labels", params.train.sbs_labels, SBS_LABELS),
                                ("train.batching", params.train.batching, BATCHINGS),
                                ("train.precision", params.train.precision, PRECISIONS),
                                ("split.rationale_filter", params.split.rationale_filter, RATIONALE_FILTERS),
                                ("eval.scoring", params.eval.scoring, SCORINGS)):
        if value not in allowed:
            problems.bad(key, value, f"one of {', '.join(allowed)}")
    for name, corpus in params.retrieval.corpus.items():
        if name not in DATASETS or corpus not in CORPORA:
            problems.bad(f"retrieval.corpus.{name}", corpus, f"a dataset name mapped to one of {', '.join(CORPORA)}")
    if params.teacher_model.backend == "openai" and not params.teacher_model.base_url:
        problems.bad("teacher_model.base_url", "", "the server's URL (for example http://127.0.0.1:8080/v1)")
    _check_range(problems, "train.alpha", params.train.alpha, 0.0, 1.0)
    _check_range(problems, "train.lr", params.train.lr, 0.0, 1.0, low_open=True)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(params.eval.device)):
        problems.bad("eval.device", params.eval.device, "auto, cpu, cuda or cuda:N")
    for key, value in (("retrieval.k", params.retrieval.k),
                       ("teacher_model.concurrency", params.teacher_model.concurrency),
                       ("teacher_model.max_new_tokens", params.teacher_model.max_new_tokens),
                       ("teacher_model.threads", params.teacher_model.threads),
                       ("train.batch_size", params.train.batch_size), ("train.grad_accum", params.train.grad_accum),
                       ("eval.batch_size", params.eval.batch_size), ("eval.bootstrap", params.eval.bootstrap),
                       ("cost.examples", params.cost.examples),
                       ("student.max_input_tokens", params.student.max_input_tokens),
                       ("student.max_target_tokens", params.student.max_target_tokens)):
        if value < 1:
            problems.bad(key, value, "a whole number of at least 1")
    if params.split.teacher_selection < 0:
        problems.bad("split.teacher_selection", params.split.teacher_selection,
                     "0 (no selection set: the students' part is drawn from every question) or a positive number")
    if params.train.epochs <= 0:
        problems.bad("train.epochs", params.train.epochs, "a positive number")
    if params.train.patience < 0:
        problems.bad("train.patience", params.train.patience, "0 (never stop early) or a positive number")
    if problems:
        raise ConfigError(f"{source}: " + (problems[0] if len(problems) == 1 else
                          f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)))
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run stages from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return validate(raw, str(path))


def stage_params(path: str | Path = "params.yaml") -> Params:
    """``load_params`` for stage scripts: a bad file prints every problem, with no traceback, and exits 2
    before anything loads."""
    try:
        return load_params(path)
    except ConfigError as err:
        print(f"[ragdistill] {err}", file=sys.stderr)
        raise SystemExit(2) from None
