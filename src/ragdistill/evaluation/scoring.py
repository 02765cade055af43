"""Running a student on the label task: greedy generation, or the likelihood of each choice."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ragdistill.data.example import Example
from ragdistill.data.registry import task_kind
from ragdistill.students.formatting import TaskFormatter
from ragdistill.students.models import Student


def _clean_generation(text: str) -> str:
    # The label is one line; anything after is the model running on.
    return text.strip().split("\n")[0].strip()


@torch.inference_mode()
def generate_labels(student: Student, examples: list[Example], formatter: TaskFormatter,
                    max_new_tokens: int = 32, batch_size: int = 16, desc: str = "generating") -> list[str]:
    """Greedy label-task generation, batched; causal prompts are left-padded."""
    model, tokenizer = student.model, student.tokenizer
    model.eval()
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    # Sorting by length keeps padding low; results go back to the original order.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input))
    by_index: dict[int, str] = {}
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        chunk = order[start : start + batch_size]
        prompts = [formatter.prompt_ids("label", examples[i].input) for i in chunk]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(prompts):
            if student.is_encoder_decoder:
                ids[row, : len(prompt)] = torch.tensor(prompt)
                mask[row, : len(prompt)] = 1
            else:
                ids[row, width - len(prompt) :] = torch.tensor(prompt)
                mask[row, width - len(prompt) :] = 1
        generated = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
        )
        new = generated if student.is_encoder_decoder else generated[:, width:]
        for row, index in enumerate(chunk):
            by_index[index] = _clean_generation(tokenizer.decode(new[row], skip_special_tokens=True))
    return [by_index[i] for i in range(len(examples))]


@torch.inference_mode()
def choice_logprobs(student: Student, prompt: list[int], targets: list[list[int]]) -> list[float]:
    """Mean log-probability of each target continuation after one prompt (length-normalized).

    For a causal LM the prompt runs once and its key-value cache is shared by all choices."""
    model = student.model
    device = next(model.parameters()).device
    width = max(len(t) for t in targets)
    target_ids = torch.full((len(targets), width), student.tokenizer.pad_token_id, dtype=torch.long)
    target_mask = torch.zeros_like(target_ids)
    for row, target in enumerate(targets):
        target_ids[row, : len(target)] = torch.tensor(target)
        target_mask[row, : len(target)] = 1
    target_ids, target_mask = target_ids.to(device), target_mask.to(device)
    if student.is_encoder_decoder:
        inputs = torch.tensor([prompt] * len(targets), device=device)
        labels = target_ids.masked_fill(target_mask == 0, -100)
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(input_ids=inputs, decoder_input_ids=decoder_input_ids).logits
    else:
        prompt_ids = torch.tensor([prompt], device=device)
        first = model(input_ids=prompt_ids, use_cache=True)
        cache = first.cache
        cache.batch_repeat_interleave(len(targets))
        mask = torch.cat([torch.ones((len(targets), len(prompt)), dtype=torch.long, device=device), target_mask], 1)
        rest = model(input_ids=target_ids, attention_mask=mask, cache=cache, use_cache=True).logits
        # The first target token is predicted by the prompt's last position.
        last = first.logits[:, -1:].expand(len(targets), 1, -1)
        logits = torch.cat([last, rest[:, :-1]], dim=1)
    logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, target_ids.unsqueeze(-1)).squeeze(-1)
    logprobs = (logprobs * target_mask).sum(1) / target_mask.sum(1)
    return logprobs.tolist()


def choose_labels(student: Student, examples: list[Example], formatter: TaskFormatter,
                  desc: str = "scoring choices") -> tuple[list[str], list[list[float]]]:
    """The choice with the highest length-normalized likelihood under the label task."""
    student.model.eval()
    predictions, scores = [], []
    for example in tqdm(examples, desc=desc, unit="question"):
        if not example.choices:
            raise ValueError(f"example {example.id}: choice scoring needs choices")
        prompt = formatter.prompt_ids("label", example.input)
        targets = [formatter.target_ids(choice) for choice in example.choices]
        values = choice_logprobs(student, prompt, targets)
        best = max(range(len(values)), key=values.__getitem__)
        predictions.append(example.choices[best])
        scores.append([round(v, 4) for v in values])
    return predictions, scores


def scoring_mode(configured: str, dataset: str) -> str:
    """``eval.scoring`` resolved: ``auto`` scores multiple choice by choice likelihood, the rest by generation."""
    if configured != "auto":
        return configured
    return "choices" if task_kind(dataset) == "choice" else "generate"


def answer_labels(student: Student, examples: list[Example], formatter: TaskFormatter, scoring: str,
                  max_new_tokens: int = 32, batch_size: int = 16, desc: str = "answering"
                  ) -> tuple[list[str], list[list[float]] | None]:
    """(predicted labels, choice scores or None) under the resolved scoring mode."""
    if scoring == "choices":
        return choose_labels(student, examples, formatter, desc=desc)
    return generate_labels(student, examples, formatter, max_new_tokens, batch_size, desc=desc), None
