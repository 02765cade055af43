"""The schema of ``params.yaml``, checked before any model loads.

Each stage reads the file once with ``load_params``; a bad value stops it with one message that names
the key and what is allowed. The library itself never reads ``params.yaml``: stages pass typed values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ragdistill.data.registry import DATASETS

TEACHERS = ("none", "palm", "plain", "rag")
RETRIEVERS = ("bm25", "dense", "hybrid")
QUERY_KINDS = ("question", "question+choices")
CORPORA = ("openbook", "strategyqa_facts", "solved_examples")
BACKENDS = ("llama_cpp", "openai", "transformers")
LABEL_POLICIES = ("keep", "gold_if_wrong")
METHODS = ("finetune", "distill", "sbs")
SCORINGS = ("auto", "choices", "generate")
SBS_LABELS = ("gold", "teacher")


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


@dataclass
class RetrievalParams:
    method: str = "dense"
    k: int = 3
    query: str = "question+choices"
    corpus: dict[str, str] = field(default_factory=dict)  # per dataset: openbook | strategyqa_facts | ...


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
    lr: float = 1e-4
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    seed: int = 0
    sbs_labels: str = "gold"
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


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"params.yaml: {key} = {value!r} is not allowed; expected {allowed}")


def _section(cls: type, raw: Any, name: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(name, raw, "a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"params.yaml: unknown key {name}.{unknown[0]}; known keys: {', '.join(known)}")
    values = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        if isinstance(default, dict):
            if not isinstance(value, dict):
                _fail(f"{name}.{key}", value, "a mapping")
        elif default is None:  # optional whole numbers (caps)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                _fail(f"{name}.{key}", value, "null or a whole number of at least 1")
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
                _fail(f"{name}.{key}", value, f"a {wanted.__name__}")
        values[key] = value
    return cls(**values)


def _check_range(key: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if math.isnan(value) or (value <= low if low_open else value < low) or value > high:
        _fail(key, value, f"a number in {'(' if low_open else '['}{low}, {high}]")


def validate(raw: Any) -> Params:
    """Turn the parsed YAML into ``Params`` or raise ``ConfigError`` naming the bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("params.yaml: expected a mapping at the top level")
    known = {"datasets", "teacher", "data", "split", "retrieval", "teacher_model", "student", "train", "eval", "cost"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"params.yaml: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    datasets = raw.get("datasets", ["svamp"])
    if isinstance(datasets, str):
        datasets = [datasets]
    if not isinstance(datasets, list) or not datasets:
        _fail("datasets", datasets, "a non-empty list of dataset names")
    for name in datasets:
        if name not in DATASETS:
            _fail("datasets", name, f"one of {', '.join(sorted(DATASETS))}")
    teacher = raw.get("teacher", "palm")
    if teacher not in TEACHERS:
        _fail("teacher", teacher, f"one of {', '.join(TEACHERS)}")
    params = Params(
        datasets=datasets,
        teacher=teacher,
        data=_section(DataParams, raw.get("data"), "data"),
        split=_section(SplitParams, raw.get("split"), "split"),
        retrieval=_section(RetrievalParams, raw.get("retrieval"), "retrieval"),
        teacher_model=_section(TeacherModelParams, raw.get("teacher_model"), "teacher_model"),
        student=_section(StudentParams, raw.get("student"), "student"),
        train=_section(TrainParams, raw.get("train"), "train"),
        eval=_section(EvalParams, raw.get("eval"), "eval"),
        cost=_section(CostParams, raw.get("cost"), "cost"),
    )
    for name, value in params.split.fraction.items():
        if name not in DATASETS:
            _fail(f"split.fraction.{name}", value, f"keys among {', '.join(sorted(DATASETS))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(f"split.fraction.{name}", value, "a number in (0, 1]")
        _check_range(f"split.fraction.{name}", value, 0.0, 1.0, low_open=True)
    _check_range("split.valid_size", params.split.valid_size, 0.0, 0.5)
    for key, value, allowed in (("retrieval.method", params.retrieval.method, RETRIEVERS),
                                ("retrieval.query", params.retrieval.query, QUERY_KINDS),
                                ("teacher_model.backend", params.teacher_model.backend, BACKENDS),
                                ("teacher_model.label_policy", params.teacher_model.label_policy, LABEL_POLICIES)):
        if value not in allowed:
            _fail(key, value, f"one of {', '.join(allowed)}")
    for name, corpus in params.retrieval.corpus.items():
        if name not in DATASETS or corpus not in CORPORA:
            _fail(f"retrieval.corpus.{name}", corpus, f"a dataset name mapped to one of {', '.join(CORPORA)}")
    if params.teacher_model.backend == "openai" and not params.teacher_model.base_url:
        _fail("teacher_model.base_url", "", "the server's URL (for example http://127.0.0.1:8080/v1)")
    _check_range("train.alpha", params.train.alpha, 0.0, 1.0)
    _check_range("train.lr", params.train.lr, 0.0, 1.0, low_open=True)
    if params.train.sbs_labels not in SBS_LABELS:
        _fail("train.sbs_labels", params.train.sbs_labels, f"one of {', '.join(SBS_LABELS)}")
    if params.eval.scoring not in SCORINGS:
        _fail("eval.scoring", params.eval.scoring, f"one of {', '.join(SCORINGS)}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(params.eval.device)):
        _fail("eval.device", params.eval.device, "auto, cpu, cuda or cuda:N")
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
            _fail(key, value, "a whole number of at least 1")
    if params.train.epochs <= 0:
        _fail("train.epochs", params.train.epochs, "a positive number")
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run stages from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return validate(raw)
