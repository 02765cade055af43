#!/usr/bin/env bash
# Build llama.cpp's own OpenAI-compatible server, llama-server, which batches concurrent requests over
# parallel slots (llama-cpp-python's server answers one at a time). Only benchmarks/http_teacher_throughput.py
# needs it. The sources are the llama.cpp that the pinned llama-cpp-python sdist vendors (from PyPI), built
# with the same portable options as scripts/install-llama-cpp.sh, without the web UI.
#
#   scripts/build-llama-server.sh PIP        prints the path of the binary (about 10 minutes on 2 cores once)
set -euo pipefail
pip=${1:?usage: $0 PIP}
# shellcheck source=scripts/llama-build-options.sh
source "$(dirname "$0")/llama-build-options.sh"
home="$builds/llama-server-$version-$key"
if [ ! -x "$home/llama-server" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "Building llama-server from llama-cpp-python $version's llama.cpp (about 10 minutes on 2 cores)" >&2
  "$pip" download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version" >&2
  tar xzf "$work"/llama_cpp_python-"$version".tar.gz -C "$work"
  src="$work/llama_cpp_python-$version/vendor/llama.cpp"
  # shellcheck disable=SC2086  # the options are words
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF $cmake_args >&2
  cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
  mkdir -p "$home.tmp"
  cp "$work/build/bin/llama-server" "$home.tmp/"
  rm -rf "$home" && mv "$home.tmp" "$home"  # a half-built folder is never taken for a build
fi
echo "$home/llama-server"
