#!/usr/bin/env bash
# run.sh SECONDS [TARGET...] - builds the libFuzzer targets with clang
# (AddressSanitizer + UndefinedBehaviorSanitizer) into build-fuzz/ and runs each
# for SECONDS, one at a time, from its seed corpus in fuzz/corpus/TARGET.
# TARGET is repr, code, safetensors or image (default: all four). Inputs found along
# the way go to build-fuzz/corpus/TARGET (never into the repository); a crash,
# leak, timeout or out-of-memory fails the script and leaves the input in
# build-fuzz/artifacts/. Needs clang and libclang-rt-14-dev (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: fuzz/run.sh SECONDS [repr|code|safetensors|image...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(repr code safetensors image)

# Warnings are the gcc builds' business (scripts/test.sh); this one only fuzzes.
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNKIT_FUZZ=ON \
    -DCNNKIT_TESTS=OFF -DCNNKIT_WERROR=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

# Model files are a few KB; the safetensors seeds are up to 8 KB, the pictures up to 16 KB.
declare -A max_len=([repr]=8192 [code]=8192 [safetensors]=16384 [image]=32768)
mkdir -p build-fuzz/artifacts
status=0
for t in "${targets[@]}"; do
    corpus=build-fuzz/corpus/$t
    mkdir -p "$corpus"
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    log=build-fuzz/fuzz_$t.log
    rm -f "$log" # a new file, even if an interrupted run still holds the old one
    echo "fuzz_$t: ${secs}s from fuzz/corpus/$t ($(ls "fuzz/corpus/$t" | wc -l) seeds)"
    rc=0
    ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz/fuzz_"$t" -max_total_time="$secs" \
        -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$t-" "${dict[@]}" "$corpus" "fuzz/corpus/$t" \
        >"$log" 2>&1 || rc=$?
    # The last status line has coverage and features; the final stats the execs.
    last=$(grep -a -E '^#[0-9]+' "$log" | tail -1 || true)
    execs=$(grep -a -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || echo "?")
    rate=$(grep -a -o 'average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || echo "?")
    cov=$(echo "$last" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' || true)
    echo "  $execs execs ($rate/s); $cov"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz_$t: FINDING (exit $rc), see $log and build-fuzz/artifacts/"
        grep -a -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 || true
        status=1
    fi
done
exit $status
