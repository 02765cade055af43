"""Training through the Hugging Face ``Trainer``, with the multi-task loss of Distilling Step-by-Step.

The paper's released code runs two forward passes per step (one padded batch per task). Here every
(example, task) pair is one row with a weight, rows of similar length are batched together
(``group_by_length``), and one forward pass computes a per-row loss: the same objective in
expectation, with less padding and one pass. A causal LM projects onto its vocabulary only the
positions that predict a target token (``logits_to_keep``), since the prompt's logits never enter the
loss. Because it is the stock ``Trainer`` and model ``forward``, ``accelerate launch`` and DeepSpeed
configs work unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from ragdistill.io import write_json
from ragdistill.students.formatting import TaskFormatter
from ragdistill.students.models import Student


@dataclass
class TaskCollator:
    """Pads a list of encoded rows; counts real and padded tokens to measure padding waste."""

    pad_token_id: int
    is_encoder_decoder: bool
    real_tokens: int = 0
    padded_tokens: int = 0
    rows_by_task: dict = field(default_factory=dict)

    def __call__(self, rows: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        label_width = max(len(r["labels"]) for r in rows)
        labels = torch.full((len(rows), label_width), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
            mask[i, : len(row["input_ids"])] = 1
            labels[i, : len(row["labels"])] = torch.tensor(row["labels"])
            self.rows_by_task[row["task"]] = self.rows_by_task.get(row["task"], 0) + 1
        self.real_tokens += int(mask.sum())
        self.padded_tokens += ids.numel()
        if self.is_encoder_decoder:
            self.real_tokens += int((labels != -100).sum())
            self.padded_tokens += labels.numel()
        weights = torch.tensor([float(r["weight"]) for r in rows])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def per_row_loss(logits: torch.Tensor, labels: torch.Tensor, shift: bool) -> torch.Tensor:
    """Mean token cross-entropy of each row over its target tokens."""
    if shift:  # causal LM: position t predicts token t + 1
        logits, labels = logits[:, :-1], labels[:, 1:]
    token_loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    counts = (labels != -100).sum(dim=1).clamp(min=1)
    return token_loss.sum(dim=1) / counts


def target_positions(labels: torch.Tensor) -> torch.Tensor:
    """Boolean (rows, width) mask of the causal LM positions whose next token is a target."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def per_row_target_loss(target_logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``per_row_loss`` of a causal LM from the logits of the ``keep`` positions only (flattened, row-major)."""
    token_loss = F.cross_entropy(target_logits.float(), labels[:, 1:][keep[:, :-1]], reduction="none")
    sums = token_loss.new_zeros(labels.size(0)).index_add(0, keep.nonzero()[:, 0], token_loss)
    return sums / keep.sum(dim=1).clamp(min=1)


def accepts_logit_mask(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep`` (a boolean mask keeps chosen positions)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


class MultiTaskTrainer(Trainer):
    """``Trainer`` whose loss is the weighted mean of per-row losses (label and rationale rows)."""

    def __init__(self, *args, is_encoder_decoder: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_encoder_decoder = is_encoder_decoder
        # The vocabulary projection of a 135M model is a fifth of its FLOPs and most positions are prompt:
        # computing logits only where a target is predicted is the same loss for less work.
        self.logits_at_targets = not is_encoder_decoder and accepts_logit_mask(self.accelerator.unwrap_model(
            self.model))
        # Our loss is already a per-batch mean: let Trainer divide it for gradient accumulation.
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs.pop("weights")
        labels = inputs.pop("labels")
        if self.is_encoder_decoder:
            decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
            outputs = model(**inputs, decoder_input_ids=decoder_input_ids)
            losses = per_row_loss(outputs.logits, labels, shift=False)
        elif self.logits_at_targets and not return_outputs:
            keep = target_positions(labels)
            outputs = model(**inputs, logits_to_keep=keep)
            if outputs.logits.dim() == 2 and outputs.logits.size(0) == int(keep.sum()):
                losses = per_row_target_loss(outputs.logits, labels, keep)
            else:
                # This model ignores a mask in logits_to_keep: all positions from now on. Its logits of
                # this batch are reused when they cover every position (no second forward pass).
                self.logits_at_targets = False
                if outputs.logits.shape[:2] != labels.shape:
                    outputs = model(**inputs)
                losses = per_row_loss(outputs.logits, labels, shift=True)
        else:
            outputs = model(**inputs)
            losses = per_row_loss(outputs.logits, labels, shift=True)
        loss = (weights.to(losses.device) * losses).mean()
        return (loss, outputs) if return_outputs else loss


class _ProgressLog(TrainerCallback):
    """Writes the loss curve so that it can be plotted and compared across runs."""

    def __init__(self):
        self.history: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.history.append({"step": state.global_step, "loss": float(logs["loss"])})


def train_student(
    student: Student,
    rows: list[tuple[str, str, str, float]],
    output_dir: str | Path,
    *,
    lr: float,
    epochs: float,
    batch_size: int,
    grad_accum: int = 1,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.0,
    seed: int = 0,
    max_steps: int = -1,
    max_input_tokens: int = 192,
    max_target_tokens: int = 96,
    checkpoint_dir: str | Path | None = None,
    save_steps: int = 50,
    callbacks: list[TrainerCallback] | None = None,
    logits_at_targets: bool = True,
) -> dict:
    """Train on (task, input, target, weight) rows, save the model to ``output_dir``, return stats.

    Checkpoints go every ``save_steps`` to a folder under ``checkpoint_dir`` (outside the DVC output)
    named by a fingerprint of everything that decides the weights (student, rows, hyperparameters). A
    killed run started again with the same inputs resumes from its newest checkpoint (the ``Trainer``'s
    own resume); a run with any other input never picks up that checkpoint.
    ``logits_at_targets=False`` projects every position onto the vocabulary (the same loss, slower; for
    benchmarks).
    """
    set_seed(seed)
    output_dir = Path(output_dir)
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder, max_input_tokens, max_target_tokens)
    encoded = [formatter.encode(task, text, target, weight) for task, text, target, weight in rows]
    dataset = Dataset.from_list(encoded)
    collator = TaskCollator(student.tokenizer.pad_token_id, student.is_encoder_decoder)
    settings = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "grad_accum": grad_accum,
                "weight_decay": weight_decay, "warmup_ratio": warmup_ratio, "seed": seed, "max_steps": max_steps,
                "save_steps": save_steps}
    checkpoint_root = Path(checkpoint_dir or output_dir.with_name(output_dir.name + ".checkpoints"))
    checkpoint_dir = checkpoint_root / run_fingerprint(student, encoded, settings)
    others = sorted(p.name for p in checkpoint_root.glob("*") if p.is_dir() and p != checkpoint_dir)
    if others:
        print(f"Not resuming the checkpoints of other settings in {checkpoint_root}: {', '.join(others)}", flush=True)
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        learning_rate=lr,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        weight_decay=weight_decay,
        warmup_steps=float(warmup_ratio),  # a float below 1 is a share of all steps
        lr_scheduler_type="linear",
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=False,
        logging_steps=max(1, min(10, len(encoded) // max(1, batch_size * 4))),
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        report_to=[],
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    progress = _ProgressLog()
    trainer = MultiTaskTrainer(
        model=student.model, args=args, train_dataset=dataset, data_collator=collator,
        callbacks=[progress, *(callbacks or [])], is_encoder_decoder=student.is_encoder_decoder,
    )
    trainer.logits_at_targets &= logits_at_targets
    resume = _latest_checkpoint(checkpoint_dir)
    if resume:
        print(f"Resuming training from {resume}", flush=True)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.perf_counter() - started
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(output_dir))
    student.tokenizer.save_pretrained(str(output_dir))
    stats = {
        "rows": len(encoded),
        "rows_by_task": {task: sum(1 for r in encoded if r["task"] == task) for task in ("label", "rationale")},
        "steps": int(result.global_step),
        "train_seconds": round(wall, 1),
        "real_tokens_seen": collator.real_tokens,
        "padded_tokens_seen": collator.padded_tokens,
        "padding_waste": round(1 - collator.real_tokens / max(1, collator.padded_tokens), 4),
        "real_tokens_per_second": round(collator.real_tokens / wall, 1),
        "padded_tokens_per_second": round(collator.padded_tokens / wall, 1),
        "final_loss": round(float(result.training_loss), 4),
        "resumed_from": str(resume) if resume else None,
        "loss_history": progress.history,
    }
    write_json(output_dir / "train_stats.json", stats)
    # The model is saved; the checkpoints were only for resuming.
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if checkpoint_root.is_dir() and not any(checkpoint_root.iterdir()):
        checkpoint_root.rmdir()
    return stats


def run_fingerprint(student: Student, encoded: list[dict], settings: dict) -> str:
    """A short hash of what decides a run's weights: the student (source and architecture), the encoded
    training rows and the training settings. Checkpoints are only resumed by a run with the same one."""
    digest = hashlib.sha256()
    digest.update(str(student.source).encode())
    digest.update(student.model.config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for row in encoded:
        digest.update(json.dumps(row, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _latest_checkpoint(directory: Path) -> Path | None:
    if not directory.is_dir():
        return None
    found = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None
