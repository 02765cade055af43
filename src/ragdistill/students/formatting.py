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


def build_task_rows(
    examples: list[Example], method: str, alpha: float = 0.5, sbs_labels: str = "gold"
) -> tuple[list[tuple[str, str, str, float]], dict]:
    """(task, input, target, weight) rows for a training method, and counts of what was left out.

    - ``finetune``: gold labels. ``distill``: the teacher's labels (examples whose teacher label could
      not be parsed are left out and counted). ``sbs``: a label row (gold or teacher label, per
      ``sbs_labels``) and a rationale row per example.
    - Weights make the mean over a batch an unbiased estimate of the paper's
      ``alpha * label_loss + (1 - alpha) * rationale_loss``: with two tasks, each label row weighs
      ``2 * alpha`` and each rationale row ``2 * (1 - alpha)``.
    """
    rows, skipped = [], {"no_teacher_label": 0, "no_rationale": 0}
    for example in examples:
        if method == "finetune":
            rows.append(("label", example.input, example.label, 1.0))
        elif method == "distill":
            if not example.teacher_label:
                skipped["no_teacher_label"] += 1
                continue
            rows.append(("label", example.input, example.teacher_label, 1.0))
        elif method == "sbs":
            label = example.label if sbs_labels == "gold" else example.teacher_label
            # A task with zero weight teaches nothing: do not spend compute on it.
            if not label:
                skipped["no_teacher_label"] += 1
            elif alpha > 0:
                rows.append(("label", example.input, label, 2 * alpha))
            if not example.rationale:
                skipped["no_rationale"] += 1
            elif alpha < 1:
                rows.append(("rationale", example.input, example.rationale, 2 * (1 - alpha)))
        else:
            raise ValueError(f"unknown training method {method!r}; expected finetune, distill or sbs")
    return rows, skipped
