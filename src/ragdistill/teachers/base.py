"""What every teacher backend provides: chat prompts in, completions with token counts and timing out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass

BACKENDS = ("llama_cpp", "openai", "transformers")

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


class TeacherError(RuntimeError):
    """A teacher could not produce a completion (server down, retries spent, bad reply)."""


@dataclass(frozen=True)
class Completion:
    """One reply. Token counts are the backend's own (for HTTP: the ``usage`` field, 0 when absent);
    ``seconds`` is the wall time spent on this prompt (a batch's time shared out equally)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DecodingSettings:
    """Greedy by default; generation stops at ``max_new_tokens`` or at any of ``stop``."""

    max_new_tokens: int = 96
    temperature: float = 0.0
    stop: tuple[str, ...] = ("\n\nQ:",)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def to_dict(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "stop": list(self.stop)}


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """The text before the first stop string (backends that cannot stop by themselves)."""
    cut = len(text)
    for marker in stop:
        position = text.find(marker)
        if position != -1:
            cut = min(cut, position)
    return text[:cut]


class Teacher(ABC):
    """An LLM that answers chat prompts. ``model_id`` names the model in caches and metadata."""

    model_id: str

    @abstractmethod
    def complete(self, prompts: list[list[Message]], settings: DecodingSettings) -> list[Completion]:
        """One completion per prompt, in order. Raises TeacherError when a prompt cannot be answered."""

    def iter_complete(
        self, prompts: list[list[Message]], settings: DecodingSettings
    ) -> Iterator[tuple[int, Completion]]:
        """(index, completion) pairs as they become available, in any order. Backends that answer
        several prompts at once override this so that each result can be saved as soon as it arrives;
        on failure they first yield what did finish, then raise."""
        yield from enumerate(self.complete(prompts, settings))

    def close(self) -> None:
        """Release the model or connections (nothing to release by default)."""
        return None

    def __enter__(self) -> Teacher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_teacher(backend: str, **kwargs) -> Teacher:
    """A teacher by backend name: ``llama_cpp`` (in-process GGUF), ``openai`` (any OpenAI-compatible
    HTTP server) or ``transformers`` (a local Hugging Face causal LM). ``kwargs`` go to its constructor."""
    if backend == "llama_cpp":
        from ragdistill.teachers.llama_cpp import LlamaCppTeacher

        return LlamaCppTeacher(**kwargs)
    if backend == "openai":
        from ragdistill.teachers.openai_http import OpenAITeacher

        return OpenAITeacher(**kwargs)
    if backend == "transformers":
        from ragdistill.teachers.transformers_backend import TransformersTeacher

        return TransformersTeacher(**kwargs)
    raise ValueError(f"unknown teacher backend {backend!r}; allowed: {', '.join(BACKENDS)}")
