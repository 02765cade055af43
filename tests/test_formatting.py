"""Task rows for each training method and their tokenization."""

from __future__ import annotations

import pytest

from ragdistill.students import TASK_PREFIXES, TaskFormatter, build_task_rows
from ragdistill.students.formatting import TASK_CUES, build_task_examples

# --------------------------------------------------------------------------- build_task_rows


def test_finetune_rows(tiny_examples):
    examples = tiny_examples(4, no_teacher=(0, 1), no_rationale=(2,))
    rows, skipped = build_task_rows(examples, "finetune")
    assert rows == [("label", e.input, e.label, 1.0) for e in examples]
    assert skipped == {"no_teacher_label": 0, "no_rationale": 0}


def test_distill_uses_teacher_labels_and_counts_skips(tiny_examples):
    examples = tiny_examples(5, no_teacher=(1, 3))
    examples[0].teacher_label = "rocks"  # a wrong teacher label is still what distill learns
    rows, skipped = build_task_rows(examples, "distill")
    assert rows == [("label", e.input, e.teacher_label, 1.0) for e in (examples[0], examples[2], examples[4])]
    assert rows[0][2] == "rocks"
    assert skipped["no_teacher_label"] == 2


@pytest.mark.parametrize("alpha", [0.5, 0.2, 0.8])
def test_sbs_rows_and_weights(tiny_examples, alpha):
    examples = tiny_examples(4)
    rows, skipped = build_task_rows(examples, "sbs", alpha)
    assert len(rows) == 8
    label_rows = [r for r in rows if r[0] == "label"]
    rationale_rows = [r for r in rows if r[0] == "rationale"]
    assert [r[2] for r in label_rows] == [e.label for e in examples]
    assert [r[2] for r in rationale_rows] == [e.rationale for e in examples]
    # Each row carries its task's weight in alpha * L_label + (1 - alpha) * L_rationale.
    assert all(r[3] == pytest.approx(alpha) for r in label_rows)
    assert all(r[3] == pytest.approx(1 - alpha) for r in rationale_rows)
    assert skipped == {"no_teacher_label": 0, "no_rationale": 0}


def test_sbs_teacher_labels_and_missing_parts(tiny_examples):
    examples = tiny_examples(4, no_teacher=(1,), no_rationale=(2,))
    examples[0].teacher_label = "rocks"
    rows, skipped = build_task_rows(examples, "sbs", 0.5, sbs_labels="teacher")
    labels = [(r[1], r[2]) for r in rows if r[0] == "label"]
    assert labels == [(examples[0].input, "rocks"), (examples[2].input, examples[2].label),
                      (examples[3].input, examples[3].label)]
    assert sum(1 for r in rows if r[0] == "rationale") == 3
    assert skipped == {"no_teacher_label": 1, "no_rationale": 1}
    # With gold labels the missing teacher label does not matter.
    gold_rows, gold_skipped = build_task_rows(examples, "sbs", 0.5, sbs_labels="gold")
    assert sum(1 for r in gold_rows if r[0] == "label") == 4
    assert gold_skipped["no_teacher_label"] == 0


def test_sbs_alpha_one_has_no_rationale_rows(tiny_examples):
    rows, _ = build_task_rows(tiny_examples(3), "sbs", alpha=1.0)
    assert [r[0] for r in rows] == ["label"] * 3
    assert all(r[3] == 1.0 for r in rows)


def test_sbs_alpha_zero_has_no_label_rows(tiny_examples):
    rows, _ = build_task_rows(tiny_examples(3), "sbs", alpha=0.0)
    assert [r[0] for r in rows] == ["rationale"] * 3
    assert all(r[3] == 1.0 for r in rows)


def test_examples_keep_their_task_rows_together(tiny_examples):
    examples = tiny_examples(3, no_rationale=(1,))
    groups, skipped = build_task_examples(examples, "sbs", 0.4)
    assert [[row[0] for row in rows] for rows in groups] == [["label", "rationale"], ["label"], ["label", "rationale"]]
    assert all(rows[0][1] == rows[-1][1] == e.input for rows, e in zip(groups, examples))
    assert skipped["no_rationale"] == 1
    flat, _ = build_task_rows(examples, "sbs", 0.4)
    assert flat == [row for rows in groups for row in rows]


def test_unknown_method(tiny_examples):
    with pytest.raises(ValueError, match="unknown training method"):
        build_task_rows(tiny_examples(1), "magic")


# --------------------------------------------------------------------------- TaskFormatter


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_causal_encode_masks_the_prompt(tiny_llama):
    tokenizer = tiny_llama.tokenizer
    formatter = TaskFormatter(tokenizer, is_encoder_decoder=False)
    row = formatter.encode("label", "Where do apples grow?", "trees", 0.7)
    prompt = formatter.prompt_ids("label", "Where do apples grow?")
    target = _ids(tokenizer, " trees")
    n = len(prompt)
    assert row["input_ids"] == prompt + target + [tokenizer.eos_token_id]
    assert row["labels"][:n] == [-100] * n
    assert row["labels"][n:] == target + [tokenizer.eos_token_id]
    assert row["input_ids"][-1] == tokenizer.eos_token_id
    assert len(row["labels"]) == len(row["input_ids"]) == row["length"]
    assert row["weight"] == 0.7 and row["task"] == "label"
    text = tokenizer.decode(row["input_ids"], skip_special_tokens=True)
    assert text == "predict: Where do apples grow?\nAnswer: trees"


def test_causal_prompt_per_task(tiny_llama):
    formatter = TaskFormatter(tiny_llama.tokenizer, is_encoder_decoder=False)
    for task in ("label", "rationale"):
        text = tiny_llama.tokenizer.decode(formatter.prompt_ids(task, "How many kids?"))
        assert text == TASK_PREFIXES[task] + "How many kids?" + TASK_CUES[task]


def test_causal_prompt_truncation_keeps_prefix_and_cue(tiny_llama):
    tokenizer = tiny_llama.tokenizer
    formatter = TaskFormatter(tokenizer, is_encoder_decoder=False, max_input_tokens=16)
    long_text = "the apples and trees of the kids " * 20
    prompt = formatter.prompt_ids("rationale", long_text)
    prefix, cue = _ids(tokenizer, TASK_PREFIXES["rationale"]), _ids(tokenizer, TASK_CUES["rationale"])
    assert len(prompt) == 16
    assert prompt[: len(prefix)] == prefix
    assert prompt[-len(cue):] == cue
    body = prompt[len(prefix) : -len(cue)]
    assert body == _ids(tokenizer, long_text)[: len(body)]  # the start of the input survives


def test_target_truncation_keeps_eos(tiny_llama):
    tokenizer = tiny_llama.tokenizer
    formatter = TaskFormatter(tokenizer, is_encoder_decoder=False, max_target_tokens=5)
    target = formatter.target_ids("the answer is so because of the apples and the trees")
    assert len(target) == 5
    assert target[-1] == tokenizer.eos_token_id
    assert target[:4] == _ids(tokenizer, " the answer is so because of the apples and the trees")[:4]


def test_seq2seq_encode(tiny_t5):
    tokenizer = tiny_t5.tokenizer
    formatter = TaskFormatter(tokenizer, is_encoder_decoder=True)
    row = formatter.encode("rationale", "How many kids?", "Kids like to play.", 1.0)
    eos = tokenizer.eos_token_id
    assert row["input_ids"] == _ids(tokenizer, "explain: ") + _ids(tokenizer, "How many kids?") + [eos]
    assert row["input_ids"][-1] == eos
    assert row["labels"] == _ids(tokenizer, "Kids like to play.") + [eos]
    assert -100 not in row["labels"]
    assert row["length"] == len(row["input_ids"]) + len(row["labels"])


def test_seq2seq_truncation_keeps_prefix_and_eos(tiny_t5):
    tokenizer = tiny_t5.tokenizer
    formatter = TaskFormatter(tokenizer, is_encoder_decoder=True, max_input_tokens=12)
    prompt = formatter.prompt_ids("label", "where do the apples and the trees grow " * 10)
    prefix = _ids(tokenizer, TASK_PREFIXES["label"])
    assert len(prompt) == 12
    assert prompt[: len(prefix)] == prefix
    assert prompt[-1] == tokenizer.eos_token_id
