#!/usr/bin/env bash
# test_cli.sh CNNKIT STDIFF FIXTURES WORKDIR - the cnnkit command end to end:
# outputs against PyTorch's, exit codes, and errors that are one line.
set -u
cnnkit=$1 stdiff=$2 fx=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect NAME CODE CMD...: the command exits with CODE.
expect() {
    local name=$1 code=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" -eq "$code" ]; then ok "$name"; else bad "$name (exit $rc, wanted $code)"; cat "$work/err"; fi
}

# expect_error NAME PATTERN CMD...: exit 1, one line on stderr matching PATTERN, nothing on stdout.
expect_error() {
    local name=$1 pattern=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$? lines
    lines=$(wc -l <"$work/err")
    if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -q -- "$pattern" "$work/err" && [ ! -s "$work/out" ]; then
        ok "$name"
    else
        bad "$name (exit $rc, $lines stderr lines)"
        cat "$work/err"
    fi
}

# Printing and tracing equal PyTorch's, byte for byte.
for m in lenet alexnet; do
    "$cnnkit" print $m >"$work/$m.print" && cmp -s "$work/$m.print" "$fx/$m.print.txt" \
        && ok "print $m equals PyTorch" || bad "print $m equals PyTorch"
    "$cnnkit" summary $m --trace >"$work/$m.trace" && cmp -s "$work/$m.trace" "$fx/$m.trace.txt" \
        && ok "summary --trace $m equals PyTorch's loop" || bad "summary --trace $m equals PyTorch's loop"
done

# torchinfo's totals.
json_total() { grep -o "\"$2\":[[:space:]]*[0-9]*" "$1" | head -1 | grep -o '[0-9]*$'; }
"$cnnkit" summary lenet --json >"$work/lenet.json"
[ "$(json_total "$work/lenet.json" total_params)" = 61706 ] && [ "$(json_total "$work/lenet.json" total_macs)" = 423038 ] \
    && ok "lenet totals 61,706 params, 423,038 MACs" || bad "lenet totals"
"$cnnkit" summary alexnet --json >"$work/alexnet.json"
[ "$(json_total "$work/alexnet.json" total_params)" = 46764746 ] && [ "$(json_total "$work/alexnet.json" total_macs)" = 938754826 ] \
    && ok "alexnet totals 46,764,746 params, 938,754,826 MACs" || bad "alexnet totals"
grep -q '"name":[[:space:]]*"net.11"' "$work/lenet.json" && ok "json names layers by module path" || bad "json layer names"

"$cnnkit" summary lenet --explain >"$work/explain"
grep -q "h' = floor((28 + 2\*2 - 1\*(5-1) - 1) / 1) + 1 = 28" "$work/explain" && ok "explain shows the conv arithmetic" || bad "explain"
grep -q "Total params: 61,706" "$work/explain" && ok "summary table totals" || bad "summary table totals"
"$cnnkit" summary lenet --input 8,1,28,28 --json >"$work/b8.json"
[ "$(json_total "$work/b8.json" total_macs)" = $((423038 * 8)) ] && ok "MACs scale with the batch" || bad "MACs with batch 8"

# The forward pass equals PyTorch's with PyTorch's weights.
"$cnnkit" run lenet --weights "$fx/lenet.weights.safetensors" --input "$fx/lenet.io.safetensors" -o "$work/y.safetensors" 2>"$work/err" \
    && "$stdiff" "$work/y.safetensors" output "$fx/lenet.io.safetensors" output 1e-4 && ok "run lenet equals PyTorch" || bad "run lenet equals PyTorch"
"$cnnkit" run lenet --seed 3 --input "$fx/lenet.io.safetensors" -o "$work/s3a.safetensors" 2>/dev/null
"$cnnkit" run lenet --seed 3 --threads 1 --input "$fx/lenet.io.safetensors" -o "$work/s3b.safetensors" 2>/dev/null
"$stdiff" "$work/s3a.safetensors" output "$work/s3b.safetensors" output 1e-6 >/dev/null && ok "seeded init is reproducible" || bad "seeded init"

# Bad usage exits 2; failures exit 1 with one line naming the problem.
expect "no command is bad usage" 2 "$cnnkit"
expect "unknown command is bad usage" 2 "$cnnkit" frobnicate
expect "unknown option is bad usage" 2 "$cnnkit" summary lenet --bogus
expect "bad --input is bad usage" 2 "$cnnkit" summary lenet --input 1,x,28
expect "run without -o is bad usage" 2 "$cnnkit" run lenet --input "$fx/lenet.io.safetensors"
for c in zoo print summary run; do expect "$c --help" 0 "$cnnkit" $c --help; done
expect "--help" 0 "$cnnkit" --help
expect_error "unknown model" "unknown model 'lenet5'" "$cnnkit" print lenet5
expect_error "shape error names the layer" "net.7 Linear(in_features=400, out_features=120, bias=True): expects 400 input features, got 576 (input \[1, 576\])" \
    "$cnnkit" summary lenet --input 1,1,32,32
expect_error "too small for alexnet" "net.*MaxPool2d\|net.*Conv2d" "$cnnkit" summary alexnet --input 1,1,32,32
expect_error "weights for another model" "error loading state_dict for AlexNet: missing keys: net.6.weight" \
    "$cnnkit" run alexnet --weights "$fx/lenet.weights.safetensors" --input "$fx/lenet.io.safetensors" -o "$work/no.safetensors"
[ ! -e "$work/no.safetensors" ] && ok "a failed run writes no output" || bad "a failed run wrote output"
expect_error "input without a tensor named input" "no tensor named 'input'" \
    "$cnnkit" run lenet --input "$fx/lenet.weights.safetensors" -o "$work/no.safetensors"
expect_error "input of the wrong shape" "expects 1 input channels, got 4" \
    "$cnnkit" run lenet --input "$fx/batchnorm.io.safetensors" -o "$work/no.safetensors"
head -c 100 "$fx/lenet.weights.safetensors" >"$work/trunc.safetensors"
expect_error "truncated weights" "trunc.safetensors" \
    "$cnnkit" run lenet --weights "$work/trunc.safetensors" --input "$fx/lenet.io.safetensors" -o "$work/no.safetensors"
printf 'garbage that is not safetensors' >"$work/garbage.safetensors"
expect_error "garbage input" "garbage.safetensors" \
    "$cnnkit" run lenet --input "$work/garbage.safetensors" -o "$work/no.safetensors"
expect_error "missing input file" "missing.safetensors" \
    "$cnnkit" run lenet --input "$work/missing.safetensors" -o "$work/no.safetensors"
[ ! -e "$work/no.safetensors" ] && ls "$work" | grep -q '\.tmp\.' && bad "temporary files left behind" || ok "no partial or temporary output"

# Memory planned before anything is allocated: summary's section and JSON, and
# runs that would not fit refused with the figure (CNNKIT_MEMORY_LIMIT stands in
# for the machine's memory).
"$cnnkit" summary lenet >"$work/mem.txt"
grep -q '^Memory at batch 1 (MiB)  *Inference$' "$work/mem.txt" && grep -q '^Weights and buffers  *0\.24$' "$work/mem.txt" \
    && grep -q '^Total  *[0-9.]*$' "$work/mem.txt" && ! grep -q 'Activation gradients' "$work/mem.txt" \
    && ok "summary ends with the inference memory" || bad "summary memory section"
"$cnnkit" summary alexnet --batch 64 --train >"$work/mem.txt"
grep -q '^Memory at batch 64 (MiB)  *Inference  *Training$' "$work/mem.txt" && grep -q '^│    └─net.20 (Linear)  *\[64, 10\]' "$work/mem.txt" \
    && grep -q '^Weights and buffers  *178\.39  *178\.39$' "$work/mem.txt" && grep -q '^Optimizer state (sgd)  *--  *0\.00$' "$work/mem.txt" \
    && grep -q '^Activation gradients  *--  *[1-9][0-9.]*$' "$work/mem.txt" \
    && ok "summary --batch 64 --train: the table at batch 64 and a training column" || bad "summary --train memory"
"$cnnkit" summary lenet --json --optim adam >"$work/mem.json"
[ "$(json_total "$work/mem.json" weights)" = $((4 * 61706)) ] && [ "$(json_total "$work/mem.json" optimizer_state)" = $((2 * 4 * 61706)) ] \
    && grep -q '"optimizer":[[:space:]]*"adam"' "$work/mem.json" && grep -q '"activation_gradients"' "$work/mem.json" \
    && grep -q '"training_state"' "$work/mem.json" && grep -q '"workspace"' "$work/mem.json" && grep -q '"total"' "$work/mem.json" \
    && ok "summary --json: memory in bytes, adam's two buffers" || bad "summary --json memory"
"$cnnkit" summary lenet --json --momentum 0.9 >"$work/mem.json"
[ "$(json_total "$work/mem.json" optimizer_state)" = $((4 * 61706)) ] && ok "momentum keeps one buffer" || bad "momentum state"
export CNNKIT_MEMORY_LIMIT=300K
expect_error "run refused when even batch 1 does not fit" \
    "cnnkit run: lenet at batch 2 needs [0-9.]* KiB (weights 241.0 KiB, gradients 241.0 KiB, activations .*) but [0-9.]* KiB is available (CNNKIT_MEMORY_LIMIT); even batch 1 needs" \
    "$cnnkit" run lenet --input "$fx/lenet.io.safetensors" -o "$work/no.safetensors"
[ ! -e "$work/no.safetensors" ] && ok "a refused run writes no output" || bad "a refused run wrote output"
export CNNKIT_MEMORY_LIMIT=8M
expect_error "bench refused with the largest batch that fits" "cnnkit bench: lenet at batch 4096 needs .* but 8.0 MiB is available (CNNKIT_MEMORY_LIMIT); try --batch [0-9]*$" \
    "$cnnkit" bench lenet --batch 4096 --train
fit=$(sed -n 's/.*try --batch \([0-9]*\)$/\1/p' "$work/err")
expect "the batch it suggests runs" 0 "$cnnkit" bench lenet --batch "$fit" --train --seconds 0.01
expect_error "one more does not fit" "at batch $((fit + 1)) needs" "$cnnkit" bench lenet --batch $((fit + 1)) --train --seconds 0.01
CNNKIT_MEMORY_LIMIT=1.5G expect "a CNNKIT_MEMORY_LIMIT that is not bytes is bad usage" 2 "$cnnkit" bench lenet --seconds 0.01
CNNKIT_MEMORY_LIMIT=none expect "CNNKIT_MEMORY_LIMIT=none turns the check off" 0 "$cnnkit" bench lenet --batch 4096 --seconds 0.01
unset CNNKIT_MEMORY_LIMIT

# --profile names how each convolution runs: AlexNet at batch 4 takes
# Winograd's F(4x4, 5x5) for conv2 and im2col for conv1.
"$cnnkit" bench alexnet --batch 4 --profile --seconds 0.01 >"$work/profile" 2>&1 &&
    grep -q "^net\.3 .*Conv2d .*Winograd F(4x4, 5x5)$" "$work/profile" &&
    grep -q "^net\.0 .*Conv2d .*chunked, im2col$" "$work/profile" &&
    ! grep -q "^net\.1 .*ReLU .*[a-z]$" "$work/profile" &&
    ok "bench --profile names each convolution's algorithm" || bad "bench --profile algorithm column"

# --input C,H,W, as its --help says, takes the batch from --batch.
"$cnnkit" bench lenet --input 1,28,28 --batch 3 --seconds 0.01 --json >"$work/bench_chw" 2>&1 &&
    grep -q '"batch": 3,' "$work/bench_chw" &&
    ok "bench --input C,H,W puts the batch in front" || bad "bench --input C,H,W: $(cat "$work/bench_chw")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
