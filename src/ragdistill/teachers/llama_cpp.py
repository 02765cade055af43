"""A GGUF teacher run in-process by llama.cpp (``llama-cpp-python``), greedy, with the GGUF's chat template.

Prefix reuse: llama.cpp keeps the key-value cache of the previous prompt and, for the next one, evaluates
only the tokens after the longest common prefix. Prompts built by ``ragdistill.teachers.prompts`` start
with the same instruction and few-shot demonstrations, so after the first prompt only the question (and
its evidence) is evaluated. ``reuse_prefix=False`` clears the cache before every prompt (for measuring).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from ragdistill.teachers.base import Completion, DecodingSettings, Message, Teacher, TeacherError
from ragdistill.teachers.llama_build import check_installed
from ragdistill.zoo import resolve_teacher_model


class LlamaCppTeacher(Teacher):
    def __init__(
        self,
        model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m",
        n_ctx: int = 2048,
        n_threads: int = 2,
        reuse_prefix: bool = True,
        seed: int = 0,
        chat_format: str | None = None,
        verbose: bool = False,
    ) -> None:
        try:
            import llama_cpp
        except ModuleNotFoundError:
            raise TeacherError("the llama_cpp teacher needs llama-cpp-python: `make install`") from None
        check_installed()  # a known native crash would kill the process with no message
        path = resolve_teacher_model(model)
        if not Path(path).is_file():
            raise TeacherError(f"{path}: no such GGUF file (give a zoo teacher name or a .gguf path)")
        # A zoo name identifies the model; for a path, the file name does.
        self.model_id = model if model != path else Path(path).name
        self.model_path = path
        self.reuse_prefix = reuse_prefix
        self.seed = seed
        self.llm = llama_cpp.Llama(
            model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=verbose,
            seed=seed, chat_format=chat_format,
        )

    def complete(self, prompts: list[list[Message]], settings: DecodingSettings) -> list[Completion]:
        return [self._one(messages, settings) for messages in prompts]

    def iter_complete(
        self, prompts: list[list[Message]], settings: DecodingSettings
    ) -> Iterator[tuple[int, Completion]]:
        # One prompt at a time, so each reply reaches the cache as soon as it is written (a kill loses
        # at most the reply in progress).
        for index, messages in enumerate(prompts):
            yield index, self._one(messages, settings)

    def _one(self, messages: list[Message], settings: DecodingSettings) -> Completion:
        if not self.reuse_prefix:
            self.llm.reset()
        start = time.perf_counter()
        try:
            reply = self.llm.create_chat_completion(
                messages=messages, temperature=settings.temperature, top_k=1 if settings.temperature == 0 else 40,
                max_tokens=settings.max_new_tokens, stop=list(settings.stop), seed=self.seed,
            )
        except ValueError as err:  # e.g. the prompt does not fit n_ctx
            raise TeacherError(f"{self.model_id}: {err}") from None
        seconds = time.perf_counter() - start
        usage = reply.get("usage") or {}
        return Completion(
            text=reply["choices"][0]["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
        )

    def footprint(self) -> dict:
        return {"params": int(self.llm._model.n_params()), "weights_bytes": Path(self.model_path).stat().st_size}

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
