"""The dataset registry: which datasets exist, where their files live, how each is loaded, scored, prompted
and retrieved for (the other extension points are in ``ragdistill.registry``). Adding a dataset is one
loader and one entry here (plus its ``split.fraction`` in
params.yaml, if not the whole training set)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ragdistill.data.example import Example
from ragdistill.registry import load

DATA_ROOT_ENV = "RAGDISTILL_DATA"

# The one vocabulary of task kinds: how the teacher is prompted and parsed, and how answers are scored.
TASK_KINDS = ("choice", "yes_no", "arithmetic")


@dataclass(frozen=True)
class Demonstration:
    """A worked example at the head of the teacher's prompt, written by hand for one training question.

    ``rationale`` states the fact that decides the question and reasons from it to the answer, in two or
    three sentences: the length and content the teacher then imitates. ``evidence`` is what the RAG prompt
    shows with it, in the form of the question turn; empty: the question's own retrieved passages.
    ``with_evidence`` is its rationale in the RAG prompt where that differs: it says which fact it used, or
    that none helped and the answer comes from what the model knows."""

    rationale: str
    evidence: tuple[str, ...] = ()
    with_evidence: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipeline knows about one dataset."""

    loader: str  # "module:function" of (data root, the dataset's own split name) -> list[Example]
    splits: dict[str, str]  # our split name (train, eval) -> the dataset's own
    kind: str  # one of TASK_KINDS
    source_dir: str  # its files under the data root; prepare records the sha256 of each
    corpus: str = "solved_examples"  # the retrieval corpus unless retrieval.corpus names another
    # The teacher's few-shot demonstrations, taken in order; with facts_as_demonstrations, training questions
    # with gold facts fill the rest (facts as rationale).
    demonstrations: dict[str, Demonstration] = field(default_factory=dict)
    facts_as_demonstrations: bool = False


DATASETS: dict[str, DatasetSpec] = {
    "cqa": DatasetSpec(
        loader="ragdistill.data.dss:load_cqa", splits={"train": "train", "eval": "test"}, kind="choice",
        source_dir="dss/cqa", demonstrations={
            "6b819727eb8a670df26a7ffad036c119": Demonstration(
                "Counting apples that fall off a tree is a simple subtraction, which is a kind of math problem."),
            "3a1b3c21a11f4ec53c166b0559df7369": Demonstration(
                "The stereotype is that homeless people live under bridges, and a bridge is transportation "
                "infrastructure."),
            "3c4ea48ce584895fa85d5ee204e2444e": Demonstration(
                "Acting without pretense and being honest both mean being sincere."),
        }),
    "svamp": DatasetSpec(
        loader="ragdistill.data.dss:load_svamp", splits={"train": "train", "eval": "test"}, kind="arithmetic",
        source_dir="dss/svamp", demonstrations={
            "svamp-train-1": Demonstration(
                "He scored 84 points in 2 equal rounds, so each round is 84 divided by 2."),
            "svamp-train-2": Demonstration(
                "There are 7 rows with 30 crayons in each row, so the crayons are 7 times 30."),
            "svamp-train-3": Demonstration(
                "She played with 17, then 15, then 2 kids, so altogether it is 17 plus 15 plus 2."),
        }),
    "openbookqa": DatasetSpec(
        loader="ragdistill.data.openbookqa:load_openbookqa", splits={"train": "train", "eval": "dev"}, kind="choice",
        source_dir="openbookqa", corpus="openbook", demonstrations={
            # Each uses a fact of the open book; the RAG prompt shows three facts per question, as retrieval
            # does, and its second demonstration's facts do not help (the model must answer from what it knows).
            "7-980": Demonstration(
                "The sun is the source of energy for physical cycles on Earth, and a plant needs sunlight to grow. "
                "A plant sprouting, blooming and wilting is such a cycle, so the sun is responsible for it.",
                evidence=("a plant requires sunlight to grow", "some flowers become fruits",
                          "the sun is the source of energy for physical cycles on Earth")),
            "7-584": Demonstration(
                "As the distance to an object increases, the object appears smaller. From miles away Mount Rushmore "
                "is much farther than a camera was, so the mountains seem smaller than in photographs.",
                evidence=("the surface of the Earth contains mountains", "landslides often occur on mountains",
                          "high means great in altitude"),
                with_evidence="None of these facts is about how distance changes what we see. An object appears "
                              "smaller the farther away it is, so from miles away the mountains seem smaller than "
                              "in photographs."),
            "7-870": Demonstration(
                "Digestion is when stomach acid breaks down food, and the digestive system breaks food into "
                "nutrients for the body. So food reduced in the stomach is being deconstructed into nutrients.",
                evidence=("the digestive system breaks food into nutrients for the body",
                          "digestion is when an organism takes in nutrients from food into itself by eating",
                          "digestion is when stomach acid breaks down food")),
        }),
    # StrategyQA's eval is a fixed stratified 20% of its public train file (see data/strategyqa.py); its yes/no
    # questions are scored as two choices.
    "strategyqa": DatasetSpec(
        loader="ragdistill.data.strategyqa:load_strategyqa", splits={"train": "train", "eval": "eval"},
        kind="choice", source_dir="strategyqa", corpus="strategyqa_facts", facts_as_demonstrations=True),
}


def resolve_data_root(configured: str | os.PathLike) -> Path:
    """The data directory: ``$RAGDISTILL_DATA`` when set, else the configured one."""
    root = Path(os.environ.get(DATA_ROOT_ENV) or configured).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"data directory {str(root)!r} does not exist (params key data.root, or ${DATA_ROOT_ENV}); "
            "fetch the public sources with `python -m ragdistill.data.download --root DIR`"
        )
    return root


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def task_kind(dataset: str) -> str:
    return dataset_spec(dataset).kind


def load_dataset(name: str, root: str | os.PathLike, split: str) -> list[Example]:
    """All examples of one split (``train`` or ``eval``) of a dataset."""
    spec = dataset_spec(name)
    if split not in spec.splits:
        raise KeyError(f"unknown split {split!r}; known: {', '.join(spec.splits)}")
    # The root given here is used as it is; $RAGDISTILL_DATA applies where a configured root is resolved.
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist")
    loader: Callable[[Path, str], list[Example]] = load(spec.loader)  # imported only when a dataset loads
    return loader(root, spec.splits[split])
