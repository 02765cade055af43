"""Start and stop a local OpenAI-compatible server serving a GGUF file on 127.0.0.1, for tests and benchmarks
of the HTTP teacher against a real server: ``llama_cpp.server`` (from ``llama-cpp-python[server]``), or
llama.cpp's own ``llama-server``, which batches concurrent requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ragdistill.teachers.base import TeacherError
from ragdistill.teachers.llama_build import check_installed, explain_exit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama_server(model: str | Path, log: str | Path, alias: str = "teacher", n_ctx: int = 2048,
                       threads: int = 2, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``llama_cpp.server`` (llama-cpp-python's, one request at a time): (process, base URL ending in /v1)
    once it answers ``GET /models``; its output goes to ``log``. Raises TeacherError (with the log's tail) if
    it exits or does not answer within ``timeout`` seconds."""
    check_installed()
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port",
               str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
               "--model_alias", alias]
    return _serve(command, port, log, "llama_cpp.server", timeout)


def start_batching_server(binary: str | Path, model: str | Path, log: str | Path, parallel: int,
                          alias: str = "teacher", n_ctx: int = 2048, threads: int = 2, timeout: float = 120.0
                          ) -> tuple[subprocess.Popen, str]:
    """llama.cpp's own ``llama-server`` (``scripts/build-llama-server.sh``) with ``parallel`` slots, which it
    decodes together in one batch; each slot gets ``n_ctx`` tokens of context. As ``start_llama_server``."""
    port = free_port()
    command = [str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
               "--ctx-size", str(n_ctx * parallel), "--parallel", str(parallel), "--threads", str(threads),
               "--threads-batch", str(threads), "--alias", alias, "--no-webui"]
    return _serve(command, port, log, "llama-server", timeout)


def _serve(command: list[str], port: int, log: str | Path, name: str, timeout: float) -> tuple[subprocess.Popen, str]:
    import requests

    with open(log, "wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TeacherError(f"{name} {explain_exit(process.returncode)}:\n{_tail(log)}")
        try:
            if requests.get(f"{base}/models", timeout=1).status_code == 200:
                return process, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise TeacherError(f"{name} did not answer within {timeout:.0f} s:\n{_tail(log)}")


def stop_server(process: subprocess.Popen) -> None:
    """Kill the server (SIGKILL, as a crash would) and reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _tail(log: str | Path) -> str:
    return Path(log).read_text(errors="replace")[-2000:]
