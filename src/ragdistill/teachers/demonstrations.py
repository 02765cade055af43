"""The few-shot demonstrations at the head of every teacher prompt (fixed per dataset).

Like the paper's few-shot chain-of-thought prompts, they are a handful of training questions with
rationales written by hand (StrategyQA: its own gold facts), listed in each dataset's entry of
``ragdistill.data.registry``. They come first in the prompt and are the same for every example, so
llama.cpp and servers reuse the cached prefix. For a RAG teacher each one shows facts too, in the form of
the question turn (``meta["evidence"]``), so the model has seen facts used, and ignored, before its question.
"""

from __future__ import annotations

import copy

from ragdistill.data.example import Example
from ragdistill.data.registry import dataset_spec


def pick_demonstrations(dataset: str, train: list[Example], count: int,
                        evidence_by_id: dict[str, list[dict]] | None = None) -> list[Example]:
    """``count`` worked examples from the training set, with rationales (copies; inputs unchanged).

    ``evidence_by_id`` (the retrieved passages per example id; given for a RAG teacher only) puts evidence in
    each demonstration: the facts written with it in the registry, else its own retrieved passages."""
    if count <= 0:
        return []
    spec = dataset_spec(dataset)
    by_id = {e.id: e for e in train}
    chosen: list[Example] = []
    for example_id, written in spec.demonstrations.items():
        if example_id in by_id and len(chosen) < count:
            demo = copy.deepcopy(by_id[example_id])
            demo.rationale = written.rationale
            if evidence_by_id is not None:
                demo.rationale = written.with_evidence or written.rationale
                demo.meta["evidence"] = list(written.evidence) or _retrieved(evidence_by_id, example_id)
            chosen.append(demo)
    if spec.facts_as_demonstrations:
        for example in train:
            if len(chosen) >= count:
                break
            if example.meta.get("facts"):
                demo = copy.deepcopy(example)
                demo.rationale = " ".join(example.meta["facts"])
                if evidence_by_id is not None:
                    demo.meta["evidence"] = _retrieved(evidence_by_id, example.id)
                chosen.append(demo)
    if len(chosen) < count:
        raise ValueError(f"{dataset}: only {len(chosen)} of {count} demonstrations are available in its training "
                         "set (teacher_model.demonstrations); add rationales to its entry in ragdistill.data.registry")
    return chosen


def _retrieved(evidence_by_id: dict[str, list[dict]], example_id: str) -> list[str]:
    return [str(p["text"]) if isinstance(p, dict) else str(p) for p in evidence_by_id.get(example_id, [])]
