#!/usr/bin/env bash
# Install llama-cpp-python (the LLM teacher's runtime and its OpenAI-compatible server) as a portable build.
#
#   scripts/install-llama-cpp.sh PIP        e.g. scripts/install-llama-cpp.sh .venv/bin/pip
#
# The build options, and why they are not pip's default build: scripts/llama-build-options.sh. The wheel is
# kept in a folder named after the version and these options, never in pip's cache, which cannot tell two
# builds of one version apart.
set -euo pipefail
pip=${1:?usage: $0 PIP}
# shellcheck source=scripts/llama-build-options.sh
source "$(dirname "$0")/llama-build-options.sh"
wheels="$builds/llama-cpp-python-$version-$key"

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
