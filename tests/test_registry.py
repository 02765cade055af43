"""The extension points: every registry entry names real code of the right kind, datasets refer only to
registered kinds and corpora, and params.yaml is validated against the registries themselves."""

from __future__ import annotations

import inspect

import pytest

from ragdistill import registry
from ragdistill.config import ConfigError, validate
from ragdistill.data.registry import DATASETS, TASK_KINDS
from ragdistill.retrieval.base import Retriever
from ragdistill.teachers.base import Teacher
from ragdistill.teachers.prompts import INSTRUCTIONS


@pytest.mark.parametrize(("entries", "base"), [(registry.BACKENDS, Teacher), (registry.RETRIEVERS, Retriever)])
def test_backends_and_retrievers_name_their_classes(entries, base):
    for name, target in entries.items():
        implementation = registry.load(target)
        assert inspect.isclass(implementation) and issubclass(implementation, base), name


def test_corpora_and_queries_name_functions():
    for corpus in registry.CORPORA.values():
        assert callable(registry.load(corpus.builder))
    for target in registry.QUERIES.values():
        assert callable(registry.load(target))


def test_datasets_use_registered_kinds_corpora_and_prompts():
    assert set(INSTRUCTIONS) == set(TASK_KINDS)
    for name, spec in DATASETS.items():
        assert spec.kind in TASK_KINDS and spec.corpus in registry.CORPORA, name
        assert set(spec.splits) == {"train", "eval"}, name


def test_methods_name_their_stages_and_splits():
    assert [m.stage for m in registry.METHODS.values()] == ["train-baseline", "train-baseline", "train-sbs"]
    assert not registry.METHODS["finetune"].uses_teacher and registry.METHODS["sbs"].uses_teacher


def test_config_accepts_what_a_registry_gains(monkeypatch):
    """config.py holds no second list: an entry added to a registry is a valid value at once."""
    with pytest.raises(ConfigError, match="retrieval.method = 'splade'.*one of bm25, dense, hybrid"):
        validate({"retrieval": {"method": "splade"}})
    monkeypatch.setitem(registry.RETRIEVERS, "splade", "somewhere:Splade")
    monkeypatch.setitem(registry.BACKENDS, "vllm", "somewhere:VLLM")
    params = validate({"retrieval": {"method": "splade"}, "teacher_model": {"backend": "vllm"}})
    assert params.retrieval.method == "splade" and params.teacher_model.backend == "vllm"


def test_lookup_names_the_allowed_entries():
    with pytest.raises(ValueError, match="unknown teacher backend 'gpt'; allowed: llama_cpp, openai, transformers"):
        registry.lookup(registry.BACKENDS, "gpt", "teacher backend")
