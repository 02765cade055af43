"""A local Hugging Face causal LM as the teacher (for a machine with a GPU): the tokenizer's chat template,
greedy decoding, prompts batched with left padding. Weights load with ``trust_remote_code=False``."""

from __future__ import annotations

import time

from ragdistill.teachers.base import Completion, DecodingSettings, Message, Teacher, TeacherError, cut_at_stop


class TransformersTeacher(Teacher):
    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 8,
        chat_template: str | None = None,
        seed: int = 0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_id = model
        self.batch_size = batch_size
        self.seed = seed
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=False)
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        if not getattr(self.tokenizer, "chat_template", None):
            raise TeacherError(f"{model}: the tokenizer has no chat template (pass chat_template=...)")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model, trust_remote_code=False, dtype=torch_dtype)
        self.model.to(self.device).eval()

    def complete(self, prompts: list[list[Message]], settings: DecodingSettings) -> list[Completion]:
        results: list[Completion] = []
        for start in range(0, len(prompts), self.batch_size):
            results.extend(self._batch(prompts[start : start + self.batch_size], settings))
        return results

    def _batch(self, prompts: list[list[Message]], settings: DecodingSettings) -> list[Completion]:
        import torch

        texts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in prompts]
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        greedy = settings.temperature == 0
        options = {"do_sample": False} if greedy else {"do_sample": True, "temperature": settings.temperature}
        if settings.stop:
            options.update(stop_strings=list(settings.stop), tokenizer=self.tokenizer)
        torch.manual_seed(self.seed)
        start = time.perf_counter()
        with torch.no_grad():
            output = self.model.generate(
                **encoded, max_new_tokens=settings.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id, **options,
            )
        seconds = (time.perf_counter() - start) / len(prompts)
        width = encoded["input_ids"].shape[1]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        completions = []
        for row, mask in zip(output, encoded["attention_mask"]):
            generated = row[width:].tolist()
            count = len(generated)
            for position, token in enumerate(generated):  # finished rows are filled with padding
                if token in eos_ids or token == self.tokenizer.pad_token_id:
                    count = position + (1 if token in eos_ids else 0)
                    break
            text = self.tokenizer.decode(generated[:count], skip_special_tokens=True)
            completions.append(Completion(
                text=cut_at_stop(text, settings.stop).strip(), prompt_tokens=int(mask.sum()),
                completion_tokens=count, seconds=seconds,
            ))
        return completions

    def footprint(self) -> dict:
        return {"params": sum(p.numel() for p in self.model.parameters())}
