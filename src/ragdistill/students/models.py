"""Load any Hugging Face causal LM or encoder-decoder by zoo name, hub id or local path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from ragdistill.zoo import ZOO_STUDENTS, resolve_student


@dataclass
class Student:
    model: torch.nn.Module
    tokenizer: object
    is_encoder_decoder: bool
    source: str


def pick_device(requested: str = "auto", key: str = "device") -> str:
    """``auto`` is the GPU when torch sees one, else the CPU; ``cuda`` (or ``cuda:N``) without a GPU is an
    error that names ``key``, the setting that asked for it, rather than a silent fall back to the CPU."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{key} = {requested!r}, but torch sees no CUDA device here (torch {torch.__version__}); "
                         f"use auto or cpu")
    return requested


def load_student(name_or_path: str, device: str | None = None) -> Student:
    """Load weights without running code from the model folder (``trust_remote_code=False``)."""
    location = resolve_student(name_or_path)
    if not Path(location).exists() and "/" not in location:
        raise ValueError(
            f"unknown student {name_or_path!r}: not a zoo name ({', '.join(ZOO_STUDENTS)}), "
            "a local checkpoint folder or a hub id (owner/name)"
        )
    config = AutoConfig.from_pretrained(location, trust_remote_code=False)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    model = auto.from_pretrained(location, dtype=torch.float32, trust_remote_code=False, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if device:
        model.to(device)
    return Student(model=model, tokenizer=tokenizer, is_encoder_decoder=bool(config.is_encoder_decoder),
                   source=name_or_path)
