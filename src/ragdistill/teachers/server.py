"""Start and stop a local OpenAI-compatible server (``llama_cpp.server`` from ``llama-cpp-python[server]``)
serving a GGUF file on 127.0.0.1: for tests and benchmarks of the HTTP teacher against a real server."""

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
    """(process, base URL ending in /v1) once the server answers ``GET /models``; its output goes to ``log``.
    Raises TeacherError (with the log's tail) if it exits or does not answer within ``timeout`` seconds."""
    import requests

    check_installed()
    port = free_port()
    with open(log, "wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port",
             str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
             "--model_alias", alias], stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TeacherError(f"llama_cpp.server {explain_exit(process.returncode)}:\n{_tail(log)}")
        try:
            if requests.get(f"{base}/models", timeout=1).status_code == 200:
                return process, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise TeacherError(f"llama_cpp.server did not answer within {timeout:.0f} s:\n{_tail(log)}")


def stop_server(process: subprocess.Popen) -> None:
    """Kill the server (SIGKILL, as a crash would) and reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _tail(log: str | Path) -> str:
    return Path(log).read_text(errors="replace")[-2000:]
