"""Turning examples into the two tasks of Distilling Step-by-Step.

Both tasks share one input and are told apart by a prefix, as in the paper's code ("predict:" and
"explain:"). A causal LM sees ``prefix + input + cue`` and learns the target after it; an
encoder-decoder reads ``prefix + input`` and writes the target. Training and inference build prompts
with the same function, so the tokens the student sees at test time are the ones it trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragdistill.data.example import Example

TASK_PREFIXES = {"label": "predict: ", "rationale": "explain: "}
TASK_CUES = {"label": "\nAnswer:", "rationale": "\nExplanation:"}


@dataclass
class TaskFormatter:
    tokenizer: object
    is_encoder_decoder: bool
    max_input_tokens: int = 192
    max_target_tokens: int = 96

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, task: str, text: str) -> list[int]:
        """Prefix, input (cut at the end when too long, keeping prefix and cue) and cue."""
        prefix = self._ids(TASK_PREFIXES[task])
        cue = [] if self.is_encoder_decoder else self._ids(TASK_CUES[task])
        tail = [self.tokenizer.eos_token_id] if self.is_encoder_decoder else []
        room = max(1, self.max_input_tokens - len(prefix) - len(cue) - len(tail))
        return prefix + self._ids(text)[:room] + cue + tail

    def target_ids(self, text: str) -> list[int]:
        # A leading space keeps causal tokenizers' word boundary after the cue.
        ids = self._ids(text if self.is_encoder_decoder else " " + text.strip())
        return ids[: self.max_target_tokens - 1] + [self.tokenizer.eos_token_id]

    def encode(self, task: str, text: str, target: str, weight: float) -> dict:
        prompt, answer = self.prompt_ids(task, text), self.target_ids(target)
        if self.is_encoder_decoder:
            row = {"input_ids": prompt, "labels": answer}
            length = len(prompt) + len(answer)
        else:
            row = {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}
            length = len(prompt) + len(answer)
        row.update(weight=weight, task=task, length=length)
        return row


TaskRow = tuple[str, str, str, float]  # (task, input, target, weight of the task in the loss)


def build_task_examples(
    examples: list[Example], method: str, alpha: float = 0.5, sbs_labels: str = "gold"
) -> tuple[list[list[TaskRow]], dict]:
    """The task rows of each training example (one list per example), and counts of what was left out.

    - ``finetune``: a gold label row. ``distill``: a teacher label row (examples whose teacher label could
      not be parsed are left out and counted). ``sbs``: a label row (gold or teacher label, per
      ``sbs_labels``) and a rationale row.
    - A row's weight is its task's weight in the paper's loss ``alpha * label_loss + (1 - alpha) *
      rationale_loss`` (1 for the single task of finetune and distill). A task with zero weight teaches
      nothing and gets no rows.
    """
    groups, skipped = [], {"no_teacher_label": 0, "no_rationale": 0}
    for example in examples:
        rows: list[TaskRow] = []
        if method == "finetune":
            rows.append(("label", example.input, example.label, 1.0))
        elif method == "distill":
            if not example.teacher_label:
                skipped["no_teacher_label"] += 1
                continue
            rows.append(("label", example.input, example.teacher_label, 1.0))
        elif method == "sbs":
            label = example.label if sbs_labels == "gold" else example.teacher_label
            if not label:
                skipped["no_teacher_label"] += 1
            elif alpha > 0:
                rows.append(("label", example.input, label, alpha))
            if not example.rationale:
                skipped["no_rationale"] += 1
            elif alpha < 1:
                rows.append(("rationale", example.input, example.rationale, 1 - alpha))
        else:
            raise ValueError(f"unknown training method {method!r}; expected finetune, distill or sbs")
        if rows:
            groups.append(rows)
    return groups, skipped


def build_task_rows(
    examples: list[Example], method: str, alpha: float = 0.5, sbs_labels: str = "gold"
) -> tuple[list[TaskRow], dict]:
    """``build_task_examples`` flattened: every example's rows in order."""
    groups, skipped = build_task_examples(examples, method, alpha, sbs_labels)
    return [row for rows in groups for row in rows], skipped
