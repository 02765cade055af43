# Sourced by scripts/install-llama-cpp.sh and scripts/build-llama-server.sh: the llama.cpp version both build,
# the portable build options, and the key naming a build by them.
#
# Why not llama.cpp's default build: it compiles with -march=native, and on a CPU that lists amx_tile it then
# compiles ggml's AMX kernels, which crash (SIGSEGV in ggml_backend_amx_mul_mat) on the first decode of the
# pinned version. A native build is also tied to the CPU it was built on, and a cache hands it to the next
# machine (which may lack AVX-512). So on x86-64 the build targets AVX2, FMA, F16C and BMI2, which every CPU
# the project meets has (AVX2-only AMD, AVX-512 Intel, AMX Intel), with AVX-512 and AMX off. Set
# LLAMA_CMAKE_ARGS to build differently (say, for CUDA).
version=0.3.36
if [ "$(uname -m)" = x86_64 ]; then
  default_args="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  default_args+=" -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
else
  default_args=""
fi
cmake_args=${LLAMA_CMAKE_ARGS-$default_args}
key=$(printf '%s %s' "$(uname -m)" "$cmake_args" | sha256sum | cut -c1-12)
builds="${RAGDISTILL_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/ragdistill/wheels}"
