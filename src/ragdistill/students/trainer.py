"""Training through the Hugging Face ``Trainer``, with the multi-task loss of Distilling Step-by-Step.

Two ways to batch (``batching``):

- ``paired``, the paper's: every step holds the label row and the rationale row of the same examples,
  and the loss is ``alpha * (token mean of the label loss) + (1 - alpha) * (token mean of the rationale
  loss)``, as the paper's ``TaskPrefixTrainer`` computes it. Both rows of an example share one padded
  batch and one forward pass, and examples of similar length are batched together. Finetune and sbs
  then take the same examples per step and the same number of steps.
- ``rows``: every (example, task) row is an item of its own, rows of similar length are batched together
  (``group_by_length``) and the loss is the weighted mean of per-row mean losses. The same objective in
  expectation, with less padding; but steps come in single-task blocks (rationale rows are longer), and
  sbs takes twice the steps of finetune.

A causal LM projects onto its vocabulary only the positions that predict a target token
(``logits_to_keep``), since the prompt's logits never enter the loss. With validation examples, the
student is scored on them with the task's own metric after every epoch and the best weights are kept.
Because it is the stock ``Trainer`` and model ``forward``, it runs data parallel under ``accelerate launch``
(``--multi_gpu --num_processes N``, on GPUs or, over gloo, on CPU cores). ``batch_size`` stays the global
batch, split among the processes, so a run takes the same steps on any number of them; only the main
process writes the outputs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from ragdistill.config import BATCHINGS, PRECISIONS
from ragdistill.data.example import Example
from ragdistill.evaluation.metrics import is_correct
from ragdistill.evaluation.scoring import answer_labels
from ragdistill.io import read_json, write_json
from ragdistill.students.formatting import TaskFormatter, TaskRow
from ragdistill.students.models import Student

TASKS = ("label", "rationale")


def world_size() -> int:
    """How many processes train together (``accelerate launch`` and ``torchrun`` set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this is the process that writes outputs and logs (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def _summed_over_processes(*counts: int) -> list[int]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return list(counts)
    total = torch.tensor(counts, dtype=torch.int64)
    torch.distributed.all_reduce(total)
    return [int(x) for x in total]


def as_item(encoded_rows: list[dict]) -> dict:
    """One training item from encoded rows (``TaskFormatter.encode``): all rows of an example (paired
    batching) or a single row. Its length, for grouping, is that of its longest row."""
    return {"input_ids": [r["input_ids"] for r in encoded_rows], "labels": [r["labels"] for r in encoded_rows],
            "tasks": [TASKS.index(r["task"]) for r in encoded_rows], "weights": [r["weight"] for r in encoded_rows],
            "length": max(r["length"] for r in encoded_rows)}


@dataclass
class TaskCollator:
    """Pads the rows of a list of items into one batch; counts real and padded tokens (padding waste)."""

    pad_token_id: int
    is_encoder_decoder: bool
    real_tokens: int = 0
    padded_tokens: int = 0

    def __call__(self, items: list[dict]) -> dict:
        rows = [(ids, labels, task, weight) for item in items
                for ids, labels, task, weight in zip(item["input_ids"], item["labels"], item["tasks"], item["weights"])]
        width = max(len(ids) for ids, *_ in rows)
        label_width = max(len(labels) for _, labels, *_ in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), label_width), -100, dtype=torch.long)
        for i, (row_ids, row_labels, _, _) in enumerate(rows):
            ids[i, : len(row_ids)] = torch.tensor(row_ids)
            mask[i, : len(row_ids)] = 1
            labels[i, : len(row_labels)] = torch.tensor(row_labels)
        self.real_tokens += int(mask.sum())
        self.padded_tokens += ids.numel()
        if self.is_encoder_decoder:
            self.real_tokens += int((labels != -100).sum())
            self.padded_tokens += labels.numel()
        return {"input_ids": ids, "attention_mask": mask, "labels": labels,
                "weights": torch.tensor([float(w) for *_, w in rows]),
                "task_ids": torch.tensor([task for _, _, task, _ in rows], dtype=torch.long)}


def token_losses(logits: torch.Tensor, labels: torch.Tensor, shift: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of token cross-entropies, number of target tokens) of each row."""
    if shift:  # causal LM: position t predicts token t + 1
        logits, labels = logits[:, :-1], labels[:, 1:]
    token_loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    return token_loss.sum(dim=1), (labels != -100).sum(dim=1)


def target_positions(labels: torch.Tensor) -> torch.Tensor:
    """Boolean (rows, width) mask of the causal LM positions whose next token is a target."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def target_token_losses(target_logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``token_losses`` of a causal LM from the logits of the ``keep`` positions only (flattened, row-major)."""
    token_loss = F.cross_entropy(target_logits.float(), labels[:, 1:][keep[:, :-1]], reduction="none")
    sums = token_loss.new_zeros(labels.size(0)).index_add(0, keep.nonzero()[:, 0], token_loss)
    return sums, keep.sum(dim=1)


def combine_losses(sums: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor, task_ids: torch.Tensor,
                   per_task_token_mean: bool) -> torch.Tensor:
    """The batch loss. ``per_task_token_mean``: the sum over tasks of the task's weight times its token
    mean over the batch (the paper's). Otherwise the mean over rows of weight times the row's token mean."""
    if not per_task_token_mean:
        return (weights * sums / counts.clamp(min=1)).mean()
    loss = sums.new_zeros(())
    for task in task_ids.unique():
        chosen = task_ids == task
        loss = loss + weights[chosen][0] * sums[chosen].sum() / counts[chosen].sum().clamp(min=1)
    return loss


def accepts_logit_mask(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep`` (a boolean mask keeps chosen positions)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


@dataclass
class Validation:
    """Held-out training examples, scored after every epoch with the task's own metric."""

    examples: list[Example]
    kind: str  # the dataset's task kind (ragdistill.data.registry.TASK_KINDS), for is_correct
    scoring: str  # choices | generate
    max_new_tokens: int = 32
    batch_size: int = 16


class MultiTaskTrainer(Trainer):
    """``Trainer`` with the multi-task loss (``combine_losses``) and, given a ``Validation``, an ``evaluate``
    that scores the student on it and keeps the best weights in ``best_dir``."""

    def __init__(self, *args, is_encoder_decoder: bool = False, per_task_token_mean: bool = True,
                 student: Student | None = None, formatter: TaskFormatter | None = None,
                 validation: Validation | None = None, best_dir: Path | None = None, patience: int = 0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.patience = patience
        self.is_encoder_decoder = is_encoder_decoder
        self.per_task_token_mean = per_task_token_mean
        self.student, self.formatter, self.validation, self.best_dir = student, formatter, validation, best_dir
        # The vocabulary projection of a 135M model is a fifth of its FLOPs and most positions are prompt:
        # computing logits only where a target is predicted is the same loss for less work.
        self.logits_at_targets = not is_encoder_decoder and accepts_logit_mask(self.accelerator.unwrap_model(
            self.model))
        # Our loss is already a per-batch mean: let Trainer divide it for gradient accumulation.
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs.pop("weights")
        task_ids = inputs.pop("task_ids")
        labels = inputs.pop("labels")
        if self.is_encoder_decoder:
            decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
            outputs = model(**inputs, decoder_input_ids=decoder_input_ids)
            sums, counts = token_losses(outputs.logits, labels, shift=False)
        elif self.logits_at_targets and not return_outputs:
            keep = target_positions(labels)
            outputs = model(**inputs, logits_to_keep=keep)
            if outputs.logits.dim() == 2 and outputs.logits.size(0) == int(keep.sum()):
                sums, counts = target_token_losses(outputs.logits, labels, keep)
            else:
                # This model ignores a mask in logits_to_keep: all positions from now on. Its logits of
                # this batch are reused when they cover every position (no second forward pass).
                self.logits_at_targets = False
                if outputs.logits.shape[:2] != labels.shape:
                    outputs = model(**inputs)
                sums, counts = token_losses(outputs.logits, labels, shift=True)
        else:
            outputs = model(**inputs)
            sums, counts = token_losses(outputs.logits, labels, shift=True)
        loss = combine_losses(sums, counts, weights.to(sums.device), task_ids.to(sums.device),
                              self.per_task_token_mean)
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        """Accuracy (percent) of the label task on the validation examples; the best weights so far are
        saved to ``best_dir`` with ``best.json`` (step, epoch, accuracy), so that a resumed run keeps them."""
        check = self.validation
        if check is None:
            raise ValueError("evaluate needs the validation examples (train_student's validation)")
        predictions, _ = answer_labels(self.student, check.examples, self.formatter, check.scoring,
                                       check.max_new_tokens, check.batch_size, desc="validation")
        self.model.train()
        right = sum(is_correct(p, e.label, check.kind) for p, e in zip(predictions, check.examples))
        accuracy = round(100 * right / len(check.examples), 2)
        metrics = {f"{metric_key_prefix}_accuracy": accuracy}
        self.log(dict(metrics))
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        best = best_so_far(self.best_dir)
        # The first of equal scores is kept: fewer steps, and a resumed run that replays a step keeps it.
        if best is None or accuracy > best["accuracy"]:
            self.save_model(str(self.best_dir))
            if self.args.should_save:
                write_json(self.best_dir / "best.json", {"accuracy": accuracy, "step": self.state.global_step,
                                                         "epoch": round(float(self.state.epoch or 0), 3)})
        elif self.patience and self._scores_since_best(best["step"]) >= self.patience:
            print(f"Stopping early: {self.patience} validation score(s) below the best, "
                  f"{best['accuracy']} at epoch {best['epoch']}", flush=True)
            self.control.should_training_stop = True
        return metrics

    def _scores_since_best(self, best_step: int) -> int:
        # From the Trainer's log, which a resumed run restores, so a resumed run stops where the first would.
        return sum(1 for e in self.state.log_history if "eval_accuracy" in e and e["step"] > best_step)


def best_so_far(best_dir: Path | None) -> dict | None:
    """What ``best_dir/best.json`` records (accuracy, step, epoch), or None before the first evaluation."""
    marker = None if best_dir is None else best_dir / "best.json"
    return read_json(marker) if marker is not None and marker.exists() else None


def train_student(
    student: Student,
    examples: list[list[TaskRow]],
    output_dir: str | Path,
    *,
    lr: float,
    epochs: float,
    batch_size: int,
    grad_accum: int = 1,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.0,
    patience: int = 0,
    seed: int = 0,
    max_steps: int = -1,
    max_input_tokens: int = 192,
    max_target_tokens: int = 96,
    batching: str = "paired",
    precision: str = "fp32",
    validation: Validation | None = None,
    checkpoint_dir: str | Path | None = None,
    save_steps: int = 50,
    callbacks: list[TrainerCallback] | None = None,
    logits_at_targets: bool = True,
) -> dict:
    """Train on the task rows of each example (``build_task_examples``), save the model to ``output_dir``
    and return its statistics.

    ``batch_size`` counts examples under ``paired`` batching (each brings all its task rows) and rows under
    ``rows`` batching, per optimizer step over all processes: under data parallelism each of them takes an
    equal share. With ``validation``, the student is scored on it after every epoch, and the weights
    saved are those of the best epoch (the first of equal scores); ``stats["validation"]`` records every
    score and the epoch that won. Without it, the last weights are saved. ``patience`` > 0 ends training
    once that many scores in a row are below the best; the learning-rate schedule is still that of all
    ``epochs``, so the weights kept are those the full run would have kept unless a later epoch would have
    beaten the best.

    Checkpoints go every ``save_steps`` to a folder under ``checkpoint_dir`` (outside the DVC output)
    named by a fingerprint of everything that decides the weights (student, rows, hyperparameters,
    validation). A killed run started again with the same inputs resumes from its newest checkpoint (the
    ``Trainer``'s own resume), with the best weights found before the kill; a run with any other input
    never picks up that checkpoint. ``precision="bf16"`` runs the forward and backward passes under bfloat16
    autocast, with fp32 weights and optimizer state (the Trainer's ``bf16``); ``fp32`` is full precision.
    ``logits_at_targets=False`` projects every position onto the
    vocabulary (the same loss, slower; for benchmarks).
    """
    if batching not in BATCHINGS:
        raise ValueError(f"unknown batching {batching!r}; expected one of {', '.join(BATCHINGS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if validation is not None and not validation.examples:
        validation = None
    processes = world_size()
    if batch_size % processes:
        raise ValueError(f"train.batch_size {batch_size} is the batch of a step over all processes: it must divide "
                         f"evenly among the {processes} processes")
    set_seed(seed)
    output_dir = Path(output_dir)
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder, max_input_tokens, max_target_tokens)
    encoded = [[formatter.encode(*row) for row in rows] for rows in examples]
    if batching == "paired":
        items = [as_item(rows) for rows in encoded]
    else:
        # A row's weight times the number of tasks makes the mean over rows estimate the weighted sum of tasks.
        tasks = len({row["task"] for rows in encoded for row in rows})
        items = [as_item([{**row, "weight": row["weight"] * tasks}]) for rows in encoded for row in rows]
    dataset = Dataset.from_list(items)
    collator = TaskCollator(student.tokenizer.pad_token_id, student.is_encoder_decoder)
    settings = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "grad_accum": grad_accum,
                "weight_decay": weight_decay, "warmup_ratio": warmup_ratio, "patience": patience, "seed": seed,
                "max_steps": max_steps,
                "save_steps": save_steps, "batching": batching, "precision": precision,
                "validation": None if validation is None else {
                    "ids": [e.id for e in validation.examples], "labels": [e.label for e in validation.examples],
                    "kind": validation.kind, "scoring": validation.scoring}}
    checkpoint_root = Path(checkpoint_dir or output_dir.with_name(output_dir.name + ".checkpoints"))
    checkpoint_dir = checkpoint_root / run_fingerprint(student, items, settings)
    others = sorted(p.name for p in checkpoint_root.glob("*") if p.is_dir() and p != checkpoint_dir)
    if others:
        print(f"Not resuming the checkpoints of other settings in {checkpoint_root}: {', '.join(others)}", flush=True)
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        learning_rate=lr,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size // processes,
        gradient_accumulation_steps=grad_accum,
        weight_decay=weight_decay,
        warmup_steps=float(warmup_ratio),  # a float below 1 is a share of all steps
        lr_scheduler_type="linear",
        bf16=precision == "bf16",
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=False,
        logging_steps=max(1, min(10, len(items) // max(1, batch_size * 4))),
        eval_strategy="epoch" if validation is not None else "no",
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        report_to=[],
        disable_tqdm=False,
        dataloader_num_workers=0,
        # Without a GPU, processes started by `accelerate launch` train data parallel over gloo only when the
        # Trainer is told it runs on the CPU; a single process is unaffected.
        use_cpu=not torch.cuda.is_available(),
    )
    best_dir = checkpoint_dir / "best"
    trainer = MultiTaskTrainer(
        model=student.model, args=args, train_dataset=dataset, data_collator=collator,
        eval_dataset=None if validation is None else Dataset.from_list([{"id": e.id} for e in validation.examples]),
        callbacks=callbacks, is_encoder_decoder=student.is_encoder_decoder,
        per_task_token_mean=batching == "paired", student=student, formatter=formatter, validation=validation,
        best_dir=best_dir, patience=patience if validation is not None else 0,
    )
    trainer.logits_at_targets &= logits_at_targets
    resume = _latest_checkpoint(checkpoint_dir)
    if resume:
        print(f"Resuming training from {resume}", flush=True)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.perf_counter() - started
    trainer.accelerator.wait_for_everyone()  # the main process has written best/ before anyone reads it
    best = best_so_far(best_dir)
    if best is not None and best["step"] != result.global_step:
        # Weights only: a folder we wrote, in safetensors, with no code run.
        kept = type(student.model).from_pretrained(str(best_dir), dtype=torch.float32, use_safetensors=True)
        trainer.accelerator.unwrap_model(trainer.model).load_state_dict(kept.state_dict())
        del kept
    trainer.save_model(str(output_dir))  # every process calls it; the Trainer lets the main one write
    history = trainer.state.log_history
    real_tokens, padded_tokens = _summed_over_processes(collator.real_tokens, collator.padded_tokens)
    rows_by_task = {task: sum(1 for rows in encoded for r in rows if r["task"] == task) for task in TASKS}
    stats = {
        "batching": batching,
        "precision": precision,
        "examples_trained": len(encoded),
        "rows": sum(rows_by_task.values()),
        "rows_by_task": rows_by_task,
        "steps": int(result.global_step),
        "train_seconds": round(wall, 1),
        "real_tokens_seen": real_tokens,
        "padded_tokens_seen": padded_tokens,
        "padding_waste": round(1 - real_tokens / max(1, padded_tokens), 4),
        "real_tokens_per_second": round(real_tokens / wall, 1),
        "padded_tokens_per_second": round(padded_tokens / wall, 1),
        "final_loss": round(float(result.training_loss), 4),
        "resumed_from": str(resume) if resume else None,
        # From the Trainer's own log, which a resumed run restores: the whole run's curve.
        "loss_history": [{"step": e["step"], "loss": float(e["loss"])} for e in history if "loss" in e],
        "validation": None if validation is None else {
            "examples": len(validation.examples), "scoring": validation.scoring,
            "history": [{"epoch": round(float(e["epoch"]), 3), "step": e["step"], "accuracy": e["eval_accuracy"]}
                        for e in history if "eval_accuracy" in e],
            "best": best, "saved": "best" if best is not None else "last",
            "stopped_early": bool(patience) and result.global_step < trainer.state.max_steps},
    }
    trainer.accelerator.wait_for_everyone()  # everyone has read best/ before it is removed
    if is_main_process():
        output_dir.mkdir(parents=True, exist_ok=True)
        student.tokenizer.save_pretrained(str(output_dir))
        write_json(output_dir / "train_stats.json", stats)
        # The model is saved; the checkpoints were only for resuming.
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if checkpoint_root.is_dir() and not any(checkpoint_root.iterdir()):
            checkpoint_root.rmdir()
    return stats


def run_fingerprint(student: Student, items: list[dict], settings: dict) -> str:
    """A short hash of what decides a run's weights: the student (source and architecture), the encoded
    training items and the training settings. Checkpoints are only resumed by a run with the same one."""
    digest = hashlib.sha256()
    digest.update(str(student.source).encode())
    digest.update(student.model.config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for item in items:
        digest.update(json.dumps(item, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _latest_checkpoint(directory: Path) -> Path | None:
    if not directory.is_dir():
        return None
    found = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None
