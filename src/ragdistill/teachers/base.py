"""What every teacher backend provides: chat prompts in, completions with token counts and timing out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ragdistill.registry import BACKENDS, load, lookup

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

    def footprint(self) -> dict:
        """What serving this teacher takes (parameters, bytes of weights), where the backend can tell."""
        return {}

    def close(self) -> None:
        """Release the model or connections (nothing to release by default)."""
        return None

    def __enter__(self) -> Teacher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def teacher_model_id(backend: str, model: str) -> str:
    """The ``model_id`` the backend's teacher will have (it keys the reply cache), known without loading it:
    a llama.cpp GGUF path is named by its file name, every other model by the name given."""
    from ragdistill.zoo import TEACHER_NAMES

    if backend == "llama_cpp" and model not in TEACHER_NAMES:
        return Path(model).name
    return model


class LazyTeacher(Teacher):
    """A teacher built on first use, so that a run whose replies are all cached (or published) never loads
    the model. ``footprint_store`` is what a run that did load it measured (see
    ``ragdistill.pipeline.annotate_teacher``)."""

    def __init__(self, backend: str, footprint_store: dict | None = None, **kwargs) -> None:
        self.backend, self.kwargs = backend, kwargs
        self.model_id = teacher_model_id(backend, kwargs["model"])
        self._teacher: Teacher | None = None
        self._known_footprint = footprint_store or {}

    @property
    def loaded(self) -> bool:
        return self._teacher is not None

    def _get(self) -> Teacher:
        if self._teacher is None:
            self._teacher = build_teacher(self.backend, **self.kwargs)
            if self._teacher.model_id != self.model_id:  # the cache keys would not match
                raise TeacherError(f"teacher model id {self._teacher.model_id!r} != expected {self.model_id!r}")
        return self._teacher

    def complete(self, prompts: list[list[Message]], settings: DecodingSettings) -> list[Completion]:
        return self._get().complete(prompts, settings)

    def iter_complete(self, prompts: list[list[Message]], settings: DecodingSettings
                      ) -> Iterator[tuple[int, Completion]]:
        yield from self._get().iter_complete(prompts, settings)

    def footprint(self) -> dict:
        return self._teacher.footprint() if self._teacher is not None else dict(self._known_footprint)

    def close(self) -> None:
        if self._teacher is not None:
            self._teacher.close()
            self._teacher = None


def build_teacher(backend: str, **kwargs) -> Teacher:
    """A teacher by backend name (``ragdistill.registry.BACKENDS``: ``llama_cpp``, an in-process GGUF;
    ``openai``, any OpenAI-compatible HTTP server; ``transformers``, a local Hugging Face causal LM).
    ``kwargs`` go to its constructor."""
    return load(lookup(BACKENDS, backend, "teacher backend"))(**kwargs)
