"""The multi-task loss, the collator and end-to-end training of the tiny students."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainingArguments

from ragdistill.students import TaskFormatter, build_task_rows, load_student
from ragdistill.students.trainer import (
    MultiTaskTrainer,
    TaskCollator,
    per_row_loss,
    target_positions,
    train_student,
)

STEPS = 30


# --------------------------------------------------------------------------- per_row_loss


def test_per_row_loss_without_shift():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    labels = torch.tensor([[1, 4, -100], [-100, 2, -100]])
    log_p = torch.log_softmax(logits, dim=-1)
    expected = torch.stack([
        -(log_p[0, 0, 1] + log_p[0, 1, 4]) / 2,
        -log_p[1, 1, 2],
    ])
    assert torch.allclose(per_row_loss(logits, labels, shift=False), expected, atol=1e-6)


def test_per_row_loss_with_shift():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 6)
    labels = torch.tensor([[-100, -100, 3, 5], [-100, 0, 1, -100]])
    log_p = torch.log_softmax(logits, dim=-1)
    # Position t predicts the label at t + 1.
    expected = torch.stack([
        -(log_p[0, 1, 3] + log_p[0, 2, 5]) / 2,
        -(log_p[1, 0, 0] + log_p[1, 1, 1]) / 2,
    ])
    assert torch.allclose(per_row_loss(logits, labels, shift=True), expected, atol=1e-6)
    # Hand-checkable: uniform logits give log(vocab) for every row.
    uniform = per_row_loss(torch.zeros(2, 4, 6), labels, shift=True)
    assert torch.allclose(uniform, torch.full((2,), math.log(6)))


def test_per_row_loss_of_a_row_without_targets_is_zero():
    logits = torch.randn(1, 3, 4)
    labels = torch.full((1, 3), -100)
    assert per_row_loss(logits, labels, shift=False).tolist() == [0.0]


def test_per_row_loss_matches_cross_entropy_mean():
    torch.manual_seed(2)
    logits = torch.randn(1, 6, 7)
    labels = torch.tensor([[2, -100, 6, 0, 1, -100]])
    expected = F.cross_entropy(logits[0], labels[0], ignore_index=-100)
    assert per_row_loss(logits, labels, shift=False).item() == pytest.approx(expected.item(), abs=1e-6)


# --------------------------------------------------------------------------- TaskCollator


def _row(ids, labels, task="label", weight=1.0):
    return {"input_ids": ids, "labels": labels, "task": task, "weight": weight, "length": len(ids)}


def test_collator_causal_padding_and_counts():
    collator = TaskCollator(pad_token_id=0, is_encoder_decoder=False)
    batch = collator([
        _row([5, 6, 7], [-100, 6, 7], "label", 1.0),
        _row([8, 9, 10, 11, 12], [-100, -100, 10, 11, 12], "rationale", 0.5),
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, -100], [-100, -100, 10, 11, 12]]
    assert batch["weights"].tolist() == [1.0, 0.5]
    assert (collator.real_tokens, collator.padded_tokens) == (8, 10)
    collator([_row([1], [1]), _row([2, 3], [2, 3], "rationale")])
    assert (collator.real_tokens, collator.padded_tokens) == (11, 14)
    assert collator.rows_by_task == {"label": 2, "rationale": 2}


def test_collator_seq2seq_counts_labels_too():
    collator = TaskCollator(pad_token_id=0, is_encoder_decoder=True)
    batch = collator([_row([5, 6, 1], [7, 1]), _row([5, 1], [7, 8, 9, 1])])
    assert batch["input_ids"].tolist() == [[5, 6, 1], [5, 1, 0]]
    assert batch["labels"].tolist() == [[7, 1, -100, -100], [7, 8, 9, 1]]
    # inputs: 5 real of 6; labels: 6 real of 8.
    assert (collator.real_tokens, collator.padded_tokens) == (11, 14)


# --------------------------------------------------------------------------- MultiTaskTrainer.compute_loss


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_compute_loss_is_the_weighted_mean(tmp_path, tiny_examples, name):
    student = load_student(name)
    student.model.eval()
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    rows, _ = build_task_rows(tiny_examples(2), "sbs", alpha=0.3)
    encoded = [formatter.encode(*row) for row in rows]
    collator = TaskCollator(student.tokenizer.pad_token_id, student.is_encoder_decoder)
    args = TrainingArguments(output_dir=str(tmp_path / "args"), report_to=[], use_cpu=True)
    trainer = MultiTaskTrainer(model=student.model, args=args, data_collator=collator,
                               is_encoder_decoder=student.is_encoder_decoder)
    batch = collator(encoded)
    with torch.no_grad():
        loss = trainer.compute_loss(student.model, dict(batch)).item()
        doubled = trainer.compute_loss(student.model, {**batch, "weights": batch["weights"] * 2}).item()
        ones = trainer.compute_loss(student.model, {**batch, "weights": torch.ones(len(encoded))}).item()
        only_second = trainer.compute_loss(student.model, {**batch, "weights": torch.tensor([0.0, 4.0, 0.0, 0.0])})
        # Each row alone, with the model's own loss (mean token cross-entropy of that row).
        per_row = []
        for row in encoded:
            out = student.model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]]))
            per_row.append(out.loss.item())
    weights = [row["weight"] for row in encoded]
    assert weights == pytest.approx([0.6, 1.4, 0.6, 1.4])
    assert doubled == pytest.approx(2 * loss, rel=1e-5)
    assert ones == pytest.approx(sum(per_row) / len(per_row), rel=1e-4)
    assert loss == pytest.approx(sum(w * v for w, v in zip(weights, per_row)) / len(per_row), rel=1e-4)
    assert only_second.item() == pytest.approx(per_row[1], rel=1e-4)


def _trainer_and_batch(tmp_path, student, examples):
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    rows, _ = build_task_rows(examples, "sbs", alpha=0.3)
    collator = TaskCollator(student.tokenizer.pad_token_id, student.is_encoder_decoder)
    args = TrainingArguments(output_dir=str(tmp_path / "args"), report_to=[], use_cpu=True)
    trainer = MultiTaskTrainer(model=student.model, args=args, data_collator=collator,
                               is_encoder_decoder=student.is_encoder_decoder)
    return trainer, collator([formatter.encode(*row) for row in rows])


def _loss_and_grads(trainer, model, batch) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_logits_only_at_target_positions_give_the_same_loss_and_gradients(tmp_path, tiny_examples):
    student = load_student("tiny-llama")
    trainer, batch = _trainer_and_batch(tmp_path, student, tiny_examples(3))
    assert trainer.logits_at_targets  # the causal LM takes a boolean logits_to_keep
    keep = target_positions(batch["labels"])
    assert 0 < keep.sum() < batch["attention_mask"].sum()  # the prompt positions are skipped
    fast_loss, fast_grads = _loss_and_grads(trainer, student.model, batch)
    trainer.logits_at_targets = False
    full_loss, full_grads = _loss_and_grads(trainer, student.model, batch)
    assert fast_loss == pytest.approx(full_loss, rel=1e-5)
    assert len(fast_grads) == len(full_grads)
    for fast, full in zip(fast_grads, full_grads):
        torch.testing.assert_close(fast, full, rtol=1e-4, atol=1e-6)


def test_a_model_that_ignores_the_logit_mask_falls_back_to_all_positions(tmp_path, tiny_examples):
    student = load_student("tiny-llama")
    reference = per_row_loss  # the loss over all positions, computed by hand below

    calls = []

    class IgnoresLogitMask(type(student.model)):
        def forward(self, *args, logits_to_keep=0, **kwargs):
            calls.append(logits_to_keep)
            return super().forward(*args, **kwargs)

    student.model.__class__ = IgnoresLogitMask
    trainer, batch = _trainer_and_batch(tmp_path, student, tiny_examples(2))
    assert trainer.logits_at_targets
    with torch.no_grad():
        loss = trainer.compute_loss(student.model, dict(batch)).item()
        assert len(calls) == 1  # the batch's all-position logits are reused, not computed twice
        logits = student.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        expected = (batch["weights"] * reference(logits, batch["labels"], shift=True)).mean().item()
    assert not trainer.logits_at_targets
    assert loss == pytest.approx(expected, rel=1e-5)


def test_seq2seq_students_keep_all_decoder_logits(tmp_path, tiny_examples):
    trainer, _ = _trainer_and_batch(tmp_path, load_student("tiny-t5"), tiny_examples(2))
    assert not trainer.logits_at_targets


# --------------------------------------------------------------------------- train_student


def _train(name: str, rows, output_dir, seed: int = 0) -> tuple[object, dict]:
    student = load_student(name)
    stats = train_student(student, rows, output_dir, lr=5e-3, epochs=1.0, batch_size=4, max_steps=STEPS,
                          seed=seed, max_input_tokens=64, max_target_tokens=32)
    return student, stats


@pytest.fixture(scope="module")
def sbs_rows():
    examples = [
        ("Where do apples grow?", "trees", "Apples grow on trees."),
        ("What do kids like to do?", "play", "Kids like to play."),
        ("How many points is a win?", "3", "A win is 3 points."),
        ("Which of these is a fruit?", "apple", "An apple is a fruit."),
    ]
    from ragdistill.data import Example

    records = [Example(id=str(i), input=q, label=a, source="test", rationale=r)
               for i, (q, a, r) in enumerate(examples)]
    rows, _ = build_task_rows(records, "sbs", alpha=0.5)
    assert len(rows) == 8
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sbs_rows):
    results = {}
    for name in ("tiny-llama", "tiny-t5"):
        output_dir = tmp_path_factory.mktemp(name) / "model"
        student, stats = _train(name, sbs_rows, output_dir)
        results[name] = (student, stats, output_dir)
    return results


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_training_lowers_the_loss(trained, name):
    _, stats, _ = trained[name]
    history = [entry["loss"] for entry in stats["loss_history"]]
    assert stats["steps"] == STEPS
    assert len(history) >= 3
    assert history[-1] < 0.7 * history[0]
    assert sum(history[-4:]) / 4 < 0.6 * sum(history[:2]) / 2
    assert 0 < stats["final_loss"] < history[0]
    assert stats["rows"] == 8 and stats["rows_by_task"] == {"label": 4, "rationale": 4}


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_saved_model_reloads(trained, name):
    student, stats, output_dir = trained[name]
    reloaded = load_student(str(output_dir))
    assert reloaded.is_encoder_decoder == student.is_encoder_decoder
    trained_state = student.model.state_dict()
    reloaded_state = reloaded.model.state_dict()
    assert set(reloaded_state) <= set(trained_state)
    for key, value in reloaded_state.items():
        assert torch.equal(value, trained_state[key].cpu()), key
    assert reloaded.tokenizer("apples trees")["input_ids"] == student.tokenizer("apples trees")["input_ids"]
    # The weights moved away from the random initialization.
    initial = load_student(name).model.state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in reloaded_state.items())
    # The checkpoints beside the output were only for resuming and are gone.
    assert not output_dir.with_name(output_dir.name + ".checkpoints").exists()


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_train_stats_file(trained, name):
    _, stats, output_dir = trained[name]
    saved = json.loads((output_dir / "train_stats.json").read_text())
    assert saved == stats
    assert 0 <= saved["padding_waste"] < 1
    assert saved["real_tokens_per_second"] > 0
    assert 0 < saved["real_tokens_seen"] <= saved["padded_tokens_seen"]
    assert saved["padding_waste"] == pytest.approx(1 - saved["real_tokens_seen"] / saved["padded_tokens_seen"],
                                                   abs=1e-4)
    assert saved["resumed_from"] is None


def test_training_is_deterministic(trained, sbs_rows, tmp_path):
    _, first, _ = trained["tiny-llama"]
    _, second = _train("tiny-llama", sbs_rows, tmp_path / "model")
    assert second["final_loss"] == first["final_loss"]
    assert second["loss_history"] == first["loss_history"]
