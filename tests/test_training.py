"""The multi-task loss, the collator and end-to-end training of the tiny students."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainerCallback, TrainingArguments

from ragdistill.students import TaskFormatter, build_task_rows, load_student
from ragdistill.students.formatting import build_task_examples
from ragdistill.students.trainer import (
    MultiTaskTrainer,
    TaskCollator,
    Validation,
    as_item,
    combine_losses,
    target_positions,
    token_losses,
    train_student,
)

STEPS = 30


def per_row_loss(logits: torch.Tensor, labels: torch.Tensor, shift: bool) -> torch.Tensor:
    """Each row's mean token loss, from ``token_losses`` (sums and counts)."""
    sums, counts = token_losses(logits, labels, shift)
    return sums / counts.clamp(min=1)


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
        as_item([_row([5, 6, 7], [-100, 6, 7], "label", 1.0)]),
        as_item([_row([8, 9, 10, 11, 12], [-100, -100, 10, 11, 12], "rationale", 0.5)]),
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, -100], [-100, -100, 10, 11, 12]]
    assert batch["weights"].tolist() == [1.0, 0.5]
    assert batch["task_ids"].tolist() == [0, 1]
    assert (collator.real_tokens, collator.padded_tokens) == (8, 10)
    collator([as_item([_row([1], [1])]), as_item([_row([2, 3], [2, 3], "rationale")])])
    assert (collator.real_tokens, collator.padded_tokens) == (11, 14)


def test_an_item_of_paired_batching_brings_every_task_row_of_its_example():
    item = as_item([_row([5, 6, 7], [-100, 6, 7], "label", 0.3),
                    _row([5, 6, 8, 9], [-100, -100, 8, 9], "rationale", 0.7)])
    assert item["length"] == 4  # its longest row decides where it is grouped
    batch = TaskCollator(pad_token_id=0, is_encoder_decoder=False)([item, as_item([_row([1, 2], [-100, 2])])])
    assert batch["task_ids"].tolist() == [0, 1, 0]
    assert batch["weights"].tolist() == pytest.approx([0.3, 0.7, 1.0])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [5, 6, 8, 9], [1, 2, 0, 0]]


def test_collator_seq2seq_counts_labels_too():
    collator = TaskCollator(pad_token_id=0, is_encoder_decoder=True)
    batch = collator([as_item([_row([5, 6, 1], [7, 1])]), as_item([_row([5, 1], [7, 8, 9, 1])])])
    assert batch["input_ids"].tolist() == [[5, 6, 1], [5, 1, 0]]
    assert batch["labels"].tolist() == [[7, 1, -100, -100], [7, 8, 9, 1]]
    # inputs: 5 real of 6; labels: 6 real of 8.
    assert (collator.real_tokens, collator.padded_tokens) == (11, 14)


# --------------------------------------------------------------------------- the loss


def test_per_task_token_mean_is_the_papers_loss():
    # Row token-loss sums and counts: two label rows (3 + 1 tokens), two rationale rows (4 + 6 tokens).
    sums, counts = torch.tensor([3.0, 2.0, 8.0, 6.0]), torch.tensor([3, 1, 4, 6])
    task_ids, weights = torch.tensor([0, 0, 1, 1]), torch.tensor([0.3, 0.3, 0.7, 0.7])
    paper = 0.3 * (3.0 + 2.0) / (3 + 1) + 0.7 * (8.0 + 6.0) / (4 + 6)  # each task: its token mean over the batch
    assert combine_losses(sums, counts, weights, task_ids, per_task_token_mean=True).item() == pytest.approx(paper)
    rows = (0.3 * 1.0 + 0.3 * 2.0 + 0.7 * 2.0 + 0.7 * 1.0) / 4  # the mean over rows of weight x row mean
    assert combine_losses(sums, counts, weights, task_ids, per_task_token_mean=False).item() == pytest.approx(rows)


def _paired_trainer(tmp_path, student, per_task_token_mean=True):
    collator = TaskCollator(student.tokenizer.pad_token_id, student.is_encoder_decoder)
    args = TrainingArguments(output_dir=str(tmp_path / "args"), report_to=[], use_cpu=True)
    trainer = MultiTaskTrainer(model=student.model, args=args, data_collator=collator,
                               is_encoder_decoder=student.is_encoder_decoder, per_task_token_mean=per_task_token_mean)
    return trainer, collator


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_paired_loss_is_alpha_times_the_label_loss_plus_the_rest_times_the_rationale_loss(tmp_path, tiny_examples,
                                                                                          name):
    student = load_student(name)
    student.model.eval()
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    groups, _ = build_task_examples(tiny_examples(3), "sbs", alpha=0.3)
    trainer, collator = _paired_trainer(tmp_path, student)
    batch = collator([as_item([formatter.encode(*row) for row in rows]) for rows in groups])
    assert batch["task_ids"].tolist() == [0, 1, 0, 1, 0, 1]  # both tasks of the same examples in one step

    def model_loss(task: str) -> float:
        # The model's own loss on one task's rows, batched: the token mean over the batch, as the paper's
        # TaskPrefixTrainer gets it from two forward passes.
        part = collator([as_item([formatter.encode(*row)]) for rows in groups for row in rows if row[0] == task])
        inputs = {"input_ids": part["input_ids"], "attention_mask": part["attention_mask"], "labels": part["labels"]}
        return student.model(**inputs).loss.item()

    with torch.no_grad():
        loss = trainer.compute_loss(student.model, dict(batch)).item()
        expected = 0.3 * model_loss("label") + 0.7 * model_loss("rationale")
    assert loss == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_rows_loss_is_the_weighted_mean_of_row_losses(tmp_path, tiny_examples, name):
    student = load_student(name)
    student.model.eval()
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    rows, _ = build_task_rows(tiny_examples(2), "sbs", alpha=0.3)
    encoded = [formatter.encode(*row) for row in rows]
    trainer, collator = _paired_trainer(tmp_path, student, per_task_token_mean=False)
    batch = collator([as_item([row]) for row in encoded])
    with torch.no_grad():
        loss = trainer.compute_loss(student.model, dict(batch)).item()
        doubled = trainer.compute_loss(student.model, {**batch, "weights": batch["weights"] * 2}).item()
        only_second = trainer.compute_loss(student.model, {**batch, "weights": torch.tensor([0.0, 4.0, 0.0, 0.0])})
        # Each row alone, with the model's own loss (mean token cross-entropy of that row).
        per_row = []
        for row in encoded:
            out = student.model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]]))
            per_row.append(out.loss.item())
    weights = [row["weight"] for row in encoded]
    assert weights == pytest.approx([0.3, 0.7, 0.3, 0.7])
    assert doubled == pytest.approx(2 * loss, rel=1e-5)
    assert loss == pytest.approx(sum(w * v for w, v in zip(weights, per_row)) / len(per_row), rel=1e-4)
    assert only_second.item() == pytest.approx(per_row[1], rel=1e-4)


def _trainer_and_batch(tmp_path, student, examples):
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    groups, _ = build_task_examples(examples, "sbs", alpha=0.3)
    trainer, collator = _paired_trainer(tmp_path, student)
    return trainer, collator([as_item([formatter.encode(*row) for row in rows]) for rows in groups])


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
        shifted = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1),
                                  ignore_index=-100, reduction="none").view(batch["labels"][:, 1:].shape)
        counts = (batch["labels"][:, 1:] != -100).sum(1)
        expected = combine_losses(shifted.sum(1), counts, batch["weights"], batch["task_ids"], True).item()
    assert not trainer.logits_at_targets
    assert loss == pytest.approx(expected, rel=1e-5)


def test_seq2seq_students_keep_all_decoder_logits(tmp_path, tiny_examples):
    trainer, _ = _trainer_and_batch(tmp_path, load_student("tiny-t5"), tiny_examples(2))
    assert not trainer.logits_at_targets


# --------------------------------------------------------------------------- train_student


def _train(name: str, groups, output_dir, seed: int = 0) -> tuple[object, dict]:
    student = load_student(name)
    stats = train_student(student, groups, output_dir, lr=5e-3, epochs=1.0, batch_size=4, max_steps=STEPS,
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
    groups, _ = build_task_examples(records, "sbs", alpha=0.5)
    assert [len(rows) for rows in groups] == [2, 2, 2, 2]
    return groups


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


# --------------------------------------------------------------------------- batching and validation


def _steps(tiny_examples, tmp_path, method: str, batching: str) -> int:
    groups, _ = build_task_examples(tiny_examples(6), method, alpha=0.5)
    stats = train_student(load_student("tiny-llama"), groups, tmp_path / f"{method}-{batching}", lr=1e-3,
                          epochs=1.0, batch_size=2, batching=batching, max_input_tokens=64, max_target_tokens=32)
    assert stats["batching"] == batching and stats["examples_trained"] == 6
    return stats["steps"]


def test_paired_batching_gives_finetune_and_sbs_the_same_steps(tiny_examples, tmp_path):
    assert _steps(tiny_examples, tmp_path, "finetune", "paired") == 3  # 6 examples, 2 a step
    assert _steps(tiny_examples, tmp_path, "sbs", "paired") == 3  # both tasks of 2 examples a step
    assert _steps(tiny_examples, tmp_path, "sbs", "rows") == 6  # 12 rows, 2 a step


def test_the_best_validated_epoch_is_the_one_saved(tiny_examples, tmp_path, monkeypatch):
    examples = tiny_examples(4)
    # Validation answers scripted per epoch: 2 of 4 right, then 4, then 1. Epoch 2 must win.
    script = iter([[e.label if i < 2 else "wrong" for i, e in enumerate(examples)],
                   [e.label for e in examples],
                   [e.label if i < 1 else "wrong" for i, e in enumerate(examples)]])
    monkeypatch.setattr("ragdistill.students.trainer.answer_labels", lambda *args, **kwargs: (next(script), None))
    weights_after_epoch = {}

    class Remember(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            weights_after_epoch[round(state.epoch)] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    groups, _ = build_task_examples(examples, "sbs", alpha=0.5)
    student = load_student("tiny-llama")
    stats = train_student(student, groups, tmp_path / "model", lr=5e-3, epochs=3.0, batch_size=2,
                          validation=Validation(examples, "choice", "choices"), callbacks=[Remember()],
                          max_input_tokens=64, max_target_tokens=32)
    checked = stats["validation"]
    assert [h["accuracy"] for h in checked["history"]] == [50.0, 100.0, 25.0]
    assert [h["epoch"] for h in checked["history"]] == [1.0, 2.0, 3.0]
    assert checked["best"] == {"accuracy": 100.0, "step": 4, "epoch": 2.0} and checked["saved"] == "best"
    saved = load_student(str(tmp_path / "model")).model.state_dict()
    assert all(torch.equal(v, weights_after_epoch[2][k]) for k, v in saved.items())
    assert any(not torch.equal(v, weights_after_epoch[3][k]) for k, v in saved.items())


def test_patience_stops_after_that_many_scores_below_the_best_and_keeps_the_best(tiny_examples, tmp_path,
                                                                                  monkeypatch):
    examples = tiny_examples(4)
    # 2 of 4 right, then 4, then 1, then 3: with patience 1 the run ends after epoch 3 of 5.
    right = [2, 4, 1, 3, 4]
    script = iter([[e.label if i < n else "wrong" for i, e in enumerate(examples)] for n in right])
    monkeypatch.setattr("ragdistill.students.trainer.answer_labels", lambda *args, **kwargs: (next(script), None))
    groups, _ = build_task_examples(examples, "finetune", alpha=0.5)
    stats = train_student(load_student("tiny-llama"), groups, tmp_path / "model", lr=5e-3, epochs=5.0,
                          batch_size=2, patience=1, validation=Validation(examples, "choice", "choices"),
                          max_input_tokens=64, max_target_tokens=32)
    checked = stats["validation"]
    assert [h["accuracy"] for h in checked["history"]] == [50.0, 100.0, 25.0]
    assert stats["steps"] == 6 and checked["stopped_early"] is True
    assert checked["best"]["epoch"] == 2.0 and checked["saved"] == "best"


def test_without_patience_every_epoch_runs(tiny_examples, tmp_path, monkeypatch):
    examples = tiny_examples(4)
    script = iter([[e.label if i < n else "wrong" for i, e in enumerate(examples)] for n in [4, 1, 1]])
    monkeypatch.setattr("ragdistill.students.trainer.answer_labels", lambda *args, **kwargs: (next(script), None))
    groups, _ = build_task_examples(examples, "finetune", alpha=0.5)
    stats = train_student(load_student("tiny-llama"), groups, tmp_path / "model", lr=5e-3, epochs=3.0,
                          batch_size=2, validation=Validation(examples, "choice", "choices"),
                          max_input_tokens=64, max_target_tokens=32)
    assert len(stats["validation"]["history"]) == 3 and stats["validation"]["stopped_early"] is False


def test_without_validation_the_last_weights_are_saved(tiny_examples, tmp_path):
    groups, _ = build_task_examples(tiny_examples(2), "finetune")
    stats = train_student(load_student("tiny-llama"), groups, tmp_path / "model", lr=1e-3, epochs=1.0, batch_size=2,
                          validation=Validation([], "choice", "choices"), max_input_tokens=64, max_target_tokens=32)
    assert stats["validation"] is None


def test_an_unknown_batching_is_refused(tiny_examples, tmp_path):
    groups, _ = build_task_examples(tiny_examples(2), "finetune")
    with pytest.raises(ValueError, match="unknown batching 'shuffled'"):
        train_student(load_student("tiny-llama"), groups, tmp_path / "m", lr=1e-3, epochs=1.0, batch_size=2,
                      batching="shuffled")


def test_bf16_precision_trains_under_autocast_with_fp32_weights(tiny_examples, tmp_path):
    groups, _ = build_task_examples(tiny_examples(4), "sbs", alpha=0.5)
    results = {}
    for precision in ("fp32", "bf16"):
        student = load_student("tiny-llama")
        seen = set()
        linear = next(m for m in student.model.modules() if isinstance(m, torch.nn.Linear))
        linear.register_forward_hook(lambda module, args, output, seen=seen: seen.add(output.dtype))
        stats = train_student(student, groups, tmp_path / precision, lr=1e-3, epochs=1.0, batch_size=2,
                              precision=precision, max_input_tokens=64, max_target_tokens=32)
        assert stats["precision"] == precision
        assert seen == {torch.bfloat16 if precision == "bf16" else torch.float32}
        assert all(p.dtype == torch.float32 for p in student.model.parameters())
        results[precision] = stats["loss_history"][0]["loss"]
    # The same first batch: bf16 rounding moves the loss a little, not a lot.
    assert results["bf16"] != results["fp32"] and abs(results["bf16"] - results["fp32"]) < 0.05 * results["fp32"]


def test_an_unknown_precision_is_refused(tiny_examples, tmp_path):
    groups, _ = build_task_examples(tiny_examples(2), "finetune")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        train_student(load_student("tiny-llama"), groups, tmp_path / "m", lr=1e-3, epochs=1.0, batch_size=2,
                      precision="fp8")
