"""Chat prompts for the teacher, and the hash that keys the annotation cache.

Layout (identical up to the last message for every example of a task, so a server or llama.cpp reuses
the cached prefix): a fixed system instruction, then the few-shot demonstrations as user / assistant
turns, then one user message with the retrieved evidence ("Facts:" and one line per passage) when
given, and the question. A RAG prompt's instruction says how to use the facts, and its demonstrations show
facts too. A rationalizing prompt (``hint``) gives the gold answer after each question and asks why.
"""

from __future__ import annotations

import hashlib
import json

from ragdistill.data.dss import LETTERS, format_choices
from ragdistill.data.example import Example
from ragdistill.data.registry import TASK_KINDS
from ragdistill.teachers.base import DecodingSettings, Message

# One instruction per task kind (ragdistill.data.registry.TASK_KINDS). The rationale states the knowledge
# the question needs: that is what a student can learn from it.
INSTRUCTIONS = {
    "choice": "Answer the multiple-choice question. Think step by step in two or three sentences: state the fact "
              "that decides the question, then reason from it to the answer. Finish with: So the answer is (x) "
              "<choice text>.",
    "arithmetic": "Solve the math word problem. Think step by step in one or two short sentences, then finish "
                  "with: The answer is (<equation>). Write the equation with the numbers of the problem and "
                  "+ - * / only, not its value.",
    "yes_no": "Answer the yes/no question. Think step by step in two or three sentences: state the facts that "
              "decide the question, then reason from them to the answer. Finish with: So the answer is yes. or: "
              "So the answer is no.",
}
# Added for a teacher that reads retrieved evidence: wrong facts mislead a small model unless it is told,
# and shown, that it may set them aside.
EVIDENCE_INSTRUCTION = ("Facts retrieved for the question come before it. Use the fact that bears on the "
                        "question; if none does, answer from what you know.")
# Added for rationalization (STaR, KARD): the teacher explains a given answer instead of choosing one.
HINT_INSTRUCTION = "The correct answer is given after the question: explain why it is right."
EVIDENCE_HEADER = "Facts:"


def task_of(example: Example) -> str:
    """The example's task kind (``TASK_KINDS``): ``choice`` when it has choices, ``yes_no`` for a yes/no
    label, else ``arithmetic``. For a registered dataset this is its registry kind."""
    if example.choices:
        return "choice"
    if example.label.strip().lower() in ("yes", "no"):
        return "yes_no"
    return "arithmetic"


def question_text(example: Example) -> str:
    """The question as the teacher sees it: with its lettered choices (added when the input lacks them)."""
    if example.choices and "Answer Choices:" not in example.input:
        return format_choices(example.input, example.choices)
    return example.input.strip()


def user_message(question: str, evidence: list[str] | None, hint: str | None = None) -> str:
    parts = []
    if evidence:
        facts = [" ".join(str(text).split()) for text in evidence if str(text).strip()]
        if facts:
            parts.append(EVIDENCE_HEADER + "\n" + "\n".join(f"- {fact}" for fact in facts))
    parts.append(f"Q: {question}")
    if hint:
        parts.append(f"The correct answer is {hint}.")
    return "\n\n".join(parts)


def answer_text(example: Example, task: str | None = None) -> str:
    """The gold answer as the instructed answer form writes it: ``(b) text``, ``yes``, or ``(3 + 4)``."""
    task = task or task_of(example)
    if task == "choice":
        if example.label not in (example.choices or []):
            raise ValueError(f"example {example.id}: label {example.label!r} is not among its choices")
        return f"({LETTERS[example.choices.index(example.label)]}) {example.label}"
    if task == "yes_no":
        return example.label.strip().lower()
    return f"({example.label.strip()})"


def demonstration_answer(example: Example, task: str | None = None) -> str:
    """The assistant turn of a demonstration: its rationale, then the answer in the instructed form."""
    task = task or task_of(example)
    if not example.rationale:
        raise ValueError(f"demonstration {example.id}: no rationale")
    rationale = " ".join(example.rationale.split())
    lead = "The answer is" if task == "arithmetic" else "So the answer is"
    return f"{rationale} {lead} {answer_text(example, task)}."


def build_prompt(
    example: Example, demonstrations: list[Example], evidence: list[str] | None = None, task: str | None = None,
    hint: bool = False,
) -> list[Message]:
    """The chat messages for one example. ``demonstrations`` are worked examples (with ``rationale`` and
    gold ``label``); a demonstration whose ``meta["evidence"]`` is a list of strings shows those facts too
    (so that a retrieval-augmented prompt's demonstrations look like its question). ``evidence`` is the
    retrieved passages' text for this example, or None for a plain teacher. ``hint``: every question turn
    ends with its gold answer, and the teacher writes the reasoning for it (rationalization)."""
    task = task or task_of(example)
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(TASK_KINDS)}")
    instruction = " ".join([INSTRUCTIONS[task], *([EVIDENCE_INSTRUCTION] if evidence is not None else []),
                            *([HINT_INSTRUCTION] if hint else [])])
    messages: list[Message] = [{"role": "system", "content": instruction}]
    for demo in demonstrations:
        demo_evidence = demo.meta.get("evidence") if isinstance(demo.meta.get("evidence"), list) else None
        demo_hint = answer_text(demo, task) if hint else None
        messages.append({"role": "user", "content": user_message(question_text(demo), demo_evidence, demo_hint)})
        messages.append({"role": "assistant", "content": demonstration_answer(demo, task)})
    own_hint = answer_text(example, task) if hint else None
    messages.append({"role": "user", "content": user_message(question_text(example), evidence, own_hint)})
    return messages


def prompt_hash(messages: list[Message], model_id: str, settings: DecodingSettings) -> str:
    """sha256 over the messages, the model and the decoding settings: the annotation cache key."""
    canonical = json.dumps(
        {"messages": [{"role": m["role"], "content": m["content"]} for m in messages], "model": model_id,
         "settings": settings.to_dict()},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
