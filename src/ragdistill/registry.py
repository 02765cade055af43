"""The extension points, one registry each: teacher backends, retrievers, retrieval corpora and training
methods (datasets have theirs in ``ragdistill.data.registry``). An entry holds everything the rest of the
code needs to know about it. Implementations are named ``"module:attribute"`` and imported only when used,
so that checking ``params.yaml`` (``ragdistill.config``) imports none of them, and a stage depends only on
the code it runs (``tests/test_dvc_deps.py`` follows these names too).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TeacherSpec:
    about: str
    llm: bool = False  # the LLM of teacher_model answers (else no model runs)
    retrieval: bool = False  # it reads each question's retrieved evidence
    rationalize: bool = False  # shown each training question's gold answer, it explains it (STaR, KARD)
    oracle: bool = False  # reads each question's gold fact in place of retrieval; evaluation questions only


# Where rationales and teacher labels come from (params key ``teacher``). Each has its own annotation file.
TEACHERS = {
    "palm": TeacherSpec("the PaLM-540B outputs published with the paper (CQA and SVAMP)"),
    "plain": TeacherSpec("the LLM of teacher_model", llm=True),
    "rag": TeacherSpec("the LLM of teacher_model, reading the retrieved evidence", llm=True, retrieval=True),
    # Rationalization: the rationale argues for the gold answer. Evaluation questions are answered freely, so
    # the teacher's own accuracy is still measured.
    "plain_rationalize": TeacherSpec("plain, shown the gold answer of each training question", llm=True,
                                     rationalize=True),
    "rag_rationalize": TeacherSpec("rag, shown the gold answer of each training question", llm=True,
                                   retrieval=True, rationalize=True),
    # A ceiling rather than a teacher: it reads the fact that supports the gold answer, which no deployed
    # teacher has, so it answers the evaluation questions only and no student learns from it.
    "oracle": TeacherSpec("the LLM of teacher_model, reading each evaluation question's gold fact (a ceiling for "
                          "retrieval, not deployable)", llm=True, oracle=True),
    # A positive control rather than a teacher: what a student learns from a rationale that is surely right.
    "gold_fact": TeacherSpec("the question's gold fact as its rationale and the gold label (OpenBookQA, StrategyQA)"),
    "none": TeacherSpec("no teacher (finetune only)"),
}

# Teacher backends (``teacher_model.backend``): a ``ragdistill.teachers.base.Teacher`` subclass each.
BACKENDS = {
    "llama_cpp": "ragdistill.teachers.llama_cpp:LlamaCppTeacher",  # a GGUF in-process
    "openai": "ragdistill.teachers.openai_http:OpenAITeacher",  # any OpenAI-compatible server
    "transformers": "ragdistill.teachers.transformers_backend:TransformersTeacher",  # a local causal LM
}

# What the teacher stage does with a label that disagrees with gold (``teacher_model.label_policy``).
LABEL_POLICIES = {
    "keep": "store the teacher's label as it is",
    "gold_if_wrong": "replace a wrong teacher label by the gold one",
}

# Retrievers (``retrieval.method``): a ``ragdistill.retrieval.base.Retriever`` subclass each.
RETRIEVERS = {
    "bm25": "ragdistill.retrieval.bm25:BM25Retriever",
    "dense": "ragdistill.retrieval.dense:DenseRetriever",
    "hybrid": "ragdistill.retrieval.hybrid:HybridRetriever",
}

# What a retrieval query is made of (``retrieval.query``): a function of the example.
QUERIES = {
    "question": "ragdistill.retrieval.run:question_only",
    "question+choices": "ragdistill.retrieval.run:question_and_choices",
    "question+each_choice": "ragdistill.retrieval.run:question_with_each_choice",  # best over one query per choice
}


@dataclass(frozen=True)
class Corpus:
    builder: str  # "module:function" returning list[Passage]
    from_examples: bool  # built from the dataset's training examples (else read from the data root)


# Retrieval corpora (``retrieval.corpus.<dataset>``; a dataset's default is in its DatasetSpec).
CORPORA = {
    "openbook": Corpus("ragdistill.data.corpora:load_openbook", from_examples=False),
    "strategyqa_facts": Corpus("ragdistill.data.corpora:strategyqa_fact_pool", from_examples=True),
    "solved_examples": Corpus("ragdistill.data.corpora:solved_examples_memory", from_examples=True),
}


@dataclass(frozen=True)
class Method:
    uses_teacher: bool  # learns teacher labels or rationales (so its training file holds them)
    stage: str  # the dvc.yaml stage that trains it


# Student training methods; ``ragdistill.students.formatting.build_task_rows`` turns examples into rows.
METHODS = {
    "finetune": Method(uses_teacher=False, stage="train-baseline"),  # gold labels
    "distill": Method(uses_teacher=True, stage="train-baseline"),  # the teacher's labels
    "sbs": Method(uses_teacher=True, stage="train-sbs"),  # labels and rationales, weighted by train.alpha
}


# The control row of every table: the student before any training, with the same prompt and scoring
# (stage evaluate-untrained). A trained student that does not beat it has not learned.
UNTRAINED = "untrained"


def load(target: str) -> Any:
    """The object a ``"module:attribute"`` registry entry names."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lookup(registry: dict, name: str, what: str) -> Any:
    """``registry[name]``, or a ValueError that lists the allowed names."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; allowed: {', '.join(registry)}")
    return registry[name]
