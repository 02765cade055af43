"""The few-shot demonstrations at the head of every teacher prompt (fixed per dataset).

Like the paper's few-shot chain-of-thought prompts, they are a handful of training questions with
rationales written by hand (StrategyQA: its own gold facts). They come first in the prompt and are the
same for every example, so llama.cpp and servers reuse the cached prefix.
"""

from __future__ import annotations

import copy

from ragdistill.data.example import Example

HANDWRITTEN: dict[str, dict[str, str]] = {
    "openbookqa": {
        "7-980": "Plants need sunlight to sprout and bloom, and strong sun also makes them wilt.",
        "7-584": "Things look smaller the farther away they are, and miles away is much farther than a camera.",
        "7-870": "The stomach digests food by breaking it down into nutrients.",
    },
    "cqa": {
        "6b819727eb8a670df26a7ffad036c119": "Counting apples that fall off a tree is a simple subtraction, "
                                            "which is a kind of math problem.",
        "3a1b3c21a11f4ec53c166b0559df7369": "The stereotype is that homeless people live under bridges, "
                                            "and a bridge is transportation infrastructure.",
        "3c4ea48ce584895fa85d5ee204e2444e": "Acting without pretense and being honest both mean being sincere.",
    },
    "svamp": {
        "svamp-train-1": "He scored 84 points in 2 equal rounds, so each round is 84 divided by 2.",
        "svamp-train-2": "There are 7 rows with 30 crayons in each row, so the crayons are 7 times 30.",
        "svamp-train-3": "She played with 17, then 15, then 2 kids, so altogether it is 17 plus 15 plus 2.",
    },
}


def pick_demonstrations(dataset: str, train: list[Example], count: int) -> list[Example]:
    """``count`` worked examples from the training set, with rationales (copies; inputs unchanged)."""
    if count <= 0:
        return []
    by_id = {e.id: e for e in train}
    chosen: list[Example] = []
    for example_id, rationale in HANDWRITTEN.get(dataset, {}).items():
        if example_id in by_id and len(chosen) < count:
            demo = copy.deepcopy(by_id[example_id])
            demo.rationale = rationale
            chosen.append(demo)
    if dataset == "strategyqa":
        for example in train:
            if len(chosen) >= count:
                break
            if example.meta.get("facts"):
                demo = copy.deepcopy(example)
                demo.rationale = " ".join(example.meta["facts"])
                chosen.append(demo)
    if len(chosen) < count:
        raise ValueError(f"{dataset}: only {len(chosen)} of {count} demonstrations are available in its training "
                         f"set (teacher_model.demonstrations); add rationales to ragdistill.teachers.demonstrations")
    return chosen
