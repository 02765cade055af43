"""Is the installed llama.cpp build safe to run on this CPU? A crash in native code kills the whole process
(a stage, or pytest with every test after it), so the checks here either look before loading a model, or load
and decode in a child process and turn its death into a message that names the cause.

    python -m ragdistill.teachers.llama_build [MODEL]    load MODEL (a zoo name or .gguf) and decode a few tokens

The known crash: a llama.cpp compiled with ggml's AMX kernels (a native build on a CPU that lists
``amx_tile``) dies with SIGSEGV in ``ggml_backend_amx_mul_mat`` on its first decode. ``make install`` builds a
portable AVX2 wheel without them (scripts/install-llama-cpp.sh).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from ragdistill.teachers.base import TeacherError

REBUILD = "rebuild it without AMX and native flags: `make install` (scripts/install-llama-cpp.sh)"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (``flags`` line of /proc/cpuinfo); empty where there is none."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def build_features(system_info: str) -> dict[str, str]:
    """``{"AVX2": "1", ...}`` from ``llama_print_system_info()`` ("CPU : SSE3 = 1 | AVX2 = 1 | ...")."""
    features = {}
    for part in system_info.replace(":", "|").split("|"):
        name, sep, value = part.partition("=")
        if sep:
            features[name.strip()] = value.strip()
    return features


def known_crash(features: dict[str, str], flags: set[str]) -> str | None:
    """Why this build would crash on this CPU, or None where no known crash applies."""
    if features.get("AMX_INT8") == "1" and "amx_tile" in flags:
        return ("this llama.cpp build has ggml's AMX kernels (AMX_INT8 = 1) and the CPU has AMX; they crash "
                f"(SIGSEGV in ggml_backend_amx_mul_mat) on the first decode: {REBUILD}")
    return None


def check_installed() -> None:
    """Raise TeacherError before a model loads if the installed build is known to crash on this CPU."""
    import llama_cpp

    reason = known_crash(build_features(llama_cpp.llama_print_system_info().decode()), cpu_flags())
    if reason:
        raise TeacherError(reason)


def explain_exit(returncode: int) -> str:
    """A child's exit status in words, with the likely cause for the signals native code dies of."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    native = {
        "SIGSEGV": "a crash in native code (ggml's AMX kernels do this on CPUs with AMX)",
        "SIGILL": "an instruction this CPU lacks (a wheel built natively on another CPU)",
    }
    if name in native:
        return f"died of {name}, {native[name]}; {REBUILD}"
    return f"died of {name}" + (" (out of memory?)" if name == "SIGKILL" else "")


def smoke_test(model: str | Path, max_tokens: int = 8, timeout: float = 180.0) -> dict:
    """Load ``model`` (a zoo teacher name or .gguf path) and greedily decode ``max_tokens`` tokens in a child
    process. Returns ``{"system_info", "text", "completion_tokens", "load_seconds", "decode_seconds"}``; raises
    TeacherError naming the cause if the child crashes, fails or hangs."""
    command = [sys.executable, "-m", "ragdistill.teachers.llama_build", str(model), "--max-tokens", str(max_tokens),
               "--child"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TeacherError(f"llama.cpp did not load and decode {model} within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise TeacherError(f"llama.cpp {explain_exit(done.returncode)} (loading and decoding {model}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(model: str, max_tokens: int) -> dict:
    import llama_cpp

    from ragdistill.zoo import resolve_teacher_model

    check_installed()
    start = time.perf_counter()
    llm = llama_cpp.Llama(model_path=resolve_teacher_model(model), n_ctx=512, n_threads=1, verbose=False)
    loaded = time.perf_counter()
    reply = llm.create_completion("The capital of France is", max_tokens=max_tokens, temperature=0.0)
    decoded = time.perf_counter()
    llm.close()
    return {
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "text": reply["choices"][0]["text"],
        "completion_tokens": int(reply["usage"]["completion_tokens"]),
        "load_seconds": round(loaded - start, 3),
        "decode_seconds": round(decoded - loaded, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="smollm2-135m-instruct", help="zoo teacher name or .gguf path")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # errors here reach the parent as a traceback on stderr and a non-zero status
        print(json.dumps(_child(args.model, args.max_tokens)))
        return 0
    try:
        result = smoke_test(args.model, args.max_tokens)
    except TeacherError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    print(f"llama.cpp build: {result['system_info']}")
    print(f"{args.model}: loaded in {result['load_seconds']} s, {result['completion_tokens']} tokens in "
          f"{result['decode_seconds']} s: {result['text']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
