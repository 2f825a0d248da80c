#!/usr/bin/env bash
# test.sh - sets up, builds and runs every test: a release build with
# warnings as errors, then the whole suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer, then each libFuzzer target for 30 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== release build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCNNKIT_WERROR=ON -DCNNKIT_TESTS=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== ASan + UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCNNKIT_WERROR=ON -DCNNKIT_TESTS=ON \
    -DCNNKIT_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== fuzz (30 s per target)"
bash fuzz/run.sh 30
