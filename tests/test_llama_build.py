"""The llama.cpp build: it loads the small GGUF and decodes on this CPU (run first, see conftest), it is the
portable build the install makes, and a crash in native code becomes a message naming the cause."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

from ragdistill.teachers import TeacherError, llama_build
from ragdistill.teachers.llama_build import build_features, cpu_flags, explain_exit, known_crash, smoke_test

AMX_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | "


def test_llama_cpp_loads_and_decodes_the_small_gguf():
    pytest.importorskip("llama_cpp")
    from ragdistill import zoo

    try:
        model = zoo.smollm2_gguf()
    except zoo.ZooError as err:
        pytest.skip(str(err))
    result = smoke_test(model, max_tokens=8)
    assert result["completion_tokens"] > 0 and result["text"].strip()
    features = build_features(result["system_info"])
    assert known_crash(features, cpu_flags()) is None
    if platform.machine() == "x86_64" and "LLAMA_CMAKE_ARGS" not in os.environ:
        # scripts/install-llama-cpp.sh's portable build: AVX2 and no AVX-512 or AMX, whatever CPU built it.
        assert features.get("AVX2") == "1", result["system_info"]
        assert not {"AVX512", "AMX_INT8"} & set(features), f"not the portable build: {result['system_info']}"


def test_build_features_and_cpu_flags(tmp_path):
    assert build_features(AMX_BUILD)["AMX_INT8"] == "1" and build_features(AMX_BUILD)["AVX2"] == "1"
    assert build_features("") == {}
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 amx_tile amx_int8\n\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_tile", "amx_int8"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_known_crash_is_an_amx_build_on_an_amx_cpu():
    amx_build, portable = build_features(AMX_BUILD), build_features("CPU : AVX2 = 1 | FMA = 1 | ")
    assert "ggml_backend_amx_mul_mat" in known_crash(amx_build, {"avx512f", "amx_tile", "amx_int8"})
    assert known_crash(amx_build, {"avx2"}) is None  # the AMX kernels are not used without AMX
    assert known_crash(portable, {"avx512f", "amx_tile", "amx_int8"}) is None


def test_explain_exit_names_the_cause():
    assert "SIGSEGV" in explain_exit(-11) and "AMX" in explain_exit(-11) and "make install" in explain_exit(-11)
    assert "SIGILL" in explain_exit(-4) and "another CPU" in explain_exit(-4)
    assert explain_exit(-9) == "died of SIGKILL (out of memory?)"
    assert explain_exit(1) == "exited with status 1"


def test_smoke_test_reports_a_native_crash_instead_of_dying(tmp_path, monkeypatch):
    """The child really dies of SIGSEGV (a null read in native code); the caller gets a TeacherError."""
    crashing = tmp_path / "python"
    crashing.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import ctypes; ctypes.string_at(0)'\n")
    crashing.chmod(0o755)
    monkeypatch.setattr(llama_build.sys, "executable", str(crashing))
    with pytest.raises(TeacherError, match=r"llama\.cpp died of SIGSEGV.*AMX.*make install.*model\.gguf"):
        smoke_test(tmp_path / "model.gguf", timeout=60)


def test_smoke_test_reports_a_model_that_does_not_load(tmp_path):
    pytest.importorskip("llama_cpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(TeacherError, match=r"(?s)exited with status 1 \(loading and decoding .*broken\.gguf\).*"):
        smoke_test(broken, timeout=60)


def test_teacher_and_server_refuse_a_build_known_to_crash(monkeypatch, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    from ragdistill.teachers.llama_cpp import LlamaCppTeacher
    from ragdistill.teachers.server import start_llama_server

    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: AMX_BUILD.encode())
    monkeypatch.setattr(llama_cpp, "Llama", no_load)
    monkeypatch.setattr(llama_build, "cpu_flags", lambda: {"avx512f", "amx_tile", "amx_int8"})
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(TeacherError, match="AMX_INT8 = 1.*make install"):
        LlamaCppTeacher(str(model))
    with pytest.raises(TeacherError, match="AMX_INT8 = 1.*make install"):
        start_llama_server(model, tmp_path / "server.log")
    assert not Path(tmp_path / "server.log").exists()
