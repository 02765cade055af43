#!/usr/bin/env bash
# Install llama-cpp-python (the LLM teacher's runtime and its OpenAI-compatible server) as a portable build.
#
#   scripts/install-llama-cpp.sh PIP        e.g. scripts/install-llama-cpp.sh .venv/bin/pip
#
# Why not pip's default build: llama.cpp builds with -march=native, and on a CPU that lists amx_tile it then
# compiles ggml's AMX kernels, which crash (SIGSEGV in ggml_backend_amx_mul_mat) on the first decode of the
# pinned version. A native wheel is also tied to the CPU it was built on, and pip's wheel cache hands it to
# the next machine (which may lack AVX-512). So on x86-64 the build targets AVX2, FMA, F16C and BMI2, which
# every CPU the project meets has (AVX2-only AMD, AVX-512 Intel, AMX Intel), with AVX-512 and AMX off. The
# wheel is kept in a folder named after the version and these options, never in pip's cache, which cannot
# tell two builds of one version apart. Set LLAMA_CMAKE_ARGS to build differently (say, for CUDA).
set -euo pipefail
pip=${1:?usage: $0 PIP}
version=0.3.36

if [ "$(uname -m)" = x86_64 ]; then
  default_args="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  default_args+=" -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
else
  default_args=""
fi
cmake_args=${LLAMA_CMAKE_ARGS-$default_args}
key=$(printf '%s %s' "$(uname -m)" "$cmake_args" | sha256sum | cut -c1-12)
wheels="${RAGDISTILL_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/ragdistill/wheels}/llama-cpp-python-$version-$key"

wheel=$(ls "$wheels"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "Building llama-cpp-python $version (about 10 minutes on 2 cores) with CMAKE_ARGS: $cmake_args"
  mkdir -p "$wheels.tmp"
  CMAKE_ARGS="$cmake_args" "$pip" wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$wheels.tmp" "llama-cpp-python==$version"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"  # a half-built folder is never taken for a wheel
  wheel=$(ls "$wheels"/llama_cpp_python-"$version"-*.whl | head -n 1)
fi
echo "llama-cpp-python: $wheel"
# --force-reinstall: an earlier (native) build of the same version would otherwise count as installed.
"$pip" install -q --force-reinstall --no-deps "$wheel"
"$pip" install -q "$wheel[server]"
