#!/usr/bin/env bash
# Installs Plexus into a scratch prefix, then builds and runs a separate CMake project that
# uses find_package(plexus) and links plexus::plexus.
set -euo pipefail
src=$1 build=$2
prefix=$build/test-install
rm -rf "$prefix" "$build/test-consumer"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$build/test-consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/test-consumer" >/dev/null
LD_LIBRARY_PATH="$prefix/lib:${LD_LIBRARY_PATH:-}" "$build/test-consumer/consumer"
