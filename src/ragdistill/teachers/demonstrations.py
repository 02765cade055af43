"""The few-shot demonstrations at the head of every teacher prompt (fixed per dataset).

Like the paper's few-shot chain-of-thought prompts, they are a handful of training questions with
rationales written by hand (StrategyQA: its own gold facts), listed in each dataset's entry of
``ragdistill.data.registry``. They come first in the prompt and are the same for every example, so
llama.cpp and servers reuse the cached prefix.
"""

from __future__ import annotations

import copy

from ragdistill.data.example import Example
from ragdistill.data.registry import dataset_spec


def pick_demonstrations(dataset: str, train: list[Example], count: int) -> list[Example]:
    """``count`` worked examples from the training set, with rationales (copies; inputs unchanged)."""
    if count <= 0:
        return []
    spec = dataset_spec(dataset)
    by_id = {e.id: e for e in train}
    chosen: list[Example] = []
    for example_id, rationale in spec.demonstrations.items():
        if example_id in by_id and len(chosen) < count:
            demo = copy.deepcopy(by_id[example_id])
            demo.rationale = rationale
            chosen.append(demo)
    if spec.facts_as_demonstrations:
        for example in train:
            if len(chosen) >= count:
                break
            if example.meta.get("facts"):
                demo = copy.deepcopy(example)
                demo.rationale = " ".join(example.meta["facts"])
                chosen.append(demo)
    if len(chosen) < count:
        raise ValueError(f"{dataset}: only {len(chosen)} of {count} demonstrations are available in its training "
                         "set (teacher_model.demonstrations); add rationales to its entry in ragdistill.data.registry")
    return chosen
