"""A teacher behind any OpenAI-compatible chat server (``POST {base_url}/chat/completions``): OpenAI itself,
vLLM, llama.cpp's server, text-generation-inference, Ollama's ``/v1`` ...

The API key is read from the environment variable *named* by ``api_key_env`` at each request; it is
never stored on the object, logged, or put in an error message. Without that variable no
``Authorization`` header is sent (local servers need none).

``concurrency`` requests are in flight at once. Connection errors, timeouts, replies cut off mid-body,
HTTP 5xx / 429 / 408 and malformed replies are retried ``max_retries`` times with exponential backoff
(``backoff`` × 2^attempt seconds, at most ``max_backoff``; a ``Retry-After`` header is honoured up to that
bound); then ``TeacherError`` says what went wrong. Other 4xx replies (bad key, unknown model) fail at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ragdistill.teachers.base import Completion, DecodingSettings, Message, Teacher, TeacherError

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAITeacher(Teacher):
    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        seed: int | None = 0,
        extra_body: dict | None = None,
    ) -> None:
        try:
            import requests  # noqa: F401
        except ModuleNotFoundError:
            raise TeacherError("the openai teacher needs `pip install requests`") from None
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not api_key_env or not api_key_env.replace("_", "").isalnum():
            raise ValueError(f"api_key_env must be the NAME of an environment variable, got {api_key_env!r}")
        self.model_id = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.seed = seed
        self.extra_body = dict(extra_body or {})
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.model_id!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    # -- one request -------------------------------------------------------------------------------------

    def _session(self):
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text

    def _payload(self, messages: list[Message], settings: DecodingSettings) -> dict:
        payload = {
            "model": self.model_id, "messages": messages, "temperature": settings.temperature,
            "max_tokens": settings.max_new_tokens, "stop": list(settings.stop)[:4] or None,
        }
        if self.seed is not None:
            payload["seed"] = self.seed
        payload.update(self.extra_body)
        return {k: v for k, v in payload.items() if v is not None}

    def _attempt(self, payload: dict) -> Completion:
        import requests

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        start = time.perf_counter()
        try:
            response = self._session().post(self.url, json=payload, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise _Retryable(f"no reply within {self.timeout:g} s") from None
        except requests.ConnectionError as err:
            raise _Retryable(f"connection failed ({type(err).__name__})") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as err:
            # The server died (or the connection broke) while sending the body: the reply is incomplete.
            raise _Retryable(f"reply cut off ({type(err).__name__})") from None
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            body = self._scrub(response.text[:300].strip())
            message = f"HTTP {response.status_code}: {body}"
            if response.status_code in RETRY_STATUS or response.status_code >= 500:
                retry_after = None
                try:
                    retry_after = float(response.headers.get("Retry-After", ""))
                except ValueError:
                    pass
                raise _Retryable(message, retry_after)
            hint = f" (is ${self.api_key_env} set?)" if response.status_code in (401, 403) else ""
            raise TeacherError(f"{self.url}: {message}{hint}")
        try:
            reply = response.json()
            text = reply["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise _Retryable(f"malformed reply ({type(err).__name__}: {self._scrub(str(err))[:120]}): "
                             f"{self._scrub(response.text[:120])!r}") from None
        usage = reply.get("usage") or {}
        return Completion(
            text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0), seconds=seconds,
        )

    def _request(self, messages: list[Message], settings: DecodingSettings) -> Completion:
        payload = self._payload(messages, settings)
        for attempt in range(self.max_retries + 1):
            try:
                return self._attempt(payload)
            except _Retryable as err:
                if attempt == self.max_retries:
                    raise TeacherError(
                        f"{self.url} (model {self.model_id}): gave up after {attempt + 1} attempts; last error: {err}"
                    ) from None
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                if err.retry_after is not None:
                    delay = min(self.max_backoff, max(delay, err.retry_after))
                time.sleep(delay)
        raise AssertionError("unreachable")

    # -- many requests -----------------------------------------------------------------------------------

    def iter_complete(
        self, prompts: list[list[Message]], settings: DecodingSettings
    ) -> Iterator[tuple[int, Completion]]:
        if not prompts:
            return
        executor = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="teacher")
        futures: dict[Future, int] = {executor.submit(self._request, m, settings): i for i, m in enumerate(prompts)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                failure = None
                for future in done:
                    if future.exception() is None:
                        yield futures[future], future.result()
                    elif failure is None:
                        failure = future.exception()
                if failure is not None:
                    # Stop sending; let requests already in flight finish and hand over what succeeded.
                    for future in pending:
                        future.cancel()
                    finished, _ = wait(pending)
                    for future in finished:
                        if not future.cancelled() and future.exception() is None:
                            yield futures[future], future.result()
                    raise failure
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def complete(self, prompts: list[list[Message]], settings: DecodingSettings) -> list[Completion]:
        results: list[Completion | None] = [None] * len(prompts)
        for index, completion in self.iter_complete(prompts, settings):
            results[index] = completion
        return results  # type: ignore[return-value]

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
