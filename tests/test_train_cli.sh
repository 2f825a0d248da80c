#!/usr/bin/env bash
# test_train_cli.sh CNNKIT STDIFF REFDIR WORKDIR - train, eval and predict end
# to end on a slice of Fashion-MNIST: resumed runs end with the same weights
# as uninterrupted ones (bit for bit), also after SIGKILL; a NaN stops the run
# and keeps the last checkpoint; PyTorch loads what cnnkit wrote.
set -u
cnnkit=$1 stdiff=$2 ref=$3 work=$4
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: no Fashion-MNIST (apt-get install dataset-fashion-mnist)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
same() { "$stdiff" "$1" "$3" "$2" "$3" 0 >/dev/null; }
# Every tensor of two state_dicts equal, bit for bit.
same_weights() {
    for k in net.0.weight net.0.bias net.3.weight net.3.bias net.7.weight net.7.bias net.9.weight \
        net.9.bias net.11.weight net.11.bias; do
        "$stdiff" "$1" $k "$2" $k 0 >/dev/null || return 1
    done
}
train=("$cnnkit" train lenet --limit 1536 --batch 128 --threads 1 --seed 5 --optim adam --lr 0.003)

# An uninterrupted run of 3 epochs (12 steps each).
"${train[@]}" --epochs 3 -o full.safetensors --log full.csv --plot full.svg >full.out 2>full.err \
    && ok "train runs" || { bad "train runs"; cat full.err; }
[ "$(grep -c '^epoch [0-9] loss .*, train acc .*, test acc' full.out)" = 3 ] && ok "d2l's line each epoch" || bad "epoch lines"
grep -q 'examples/sec' full.out && ok "examples/sec at the end" || bad "examples/sec"
[ "$(wc -l <full.csv)" = 4 ] && head -1 full.csv | grep -q '^epoch,step,loss,train_acc,test_acc' && ok "metrics log" || bad "metrics log"
grep -q '<svg' full.svg && grep -q 'test acc' full.svg && ok "training figure" || bad "training figure"
[ -e full.ckpt.safetensors ] && ok "checkpoint written" || bad "checkpoint written"

# Stopped after 17 steps (mid-epoch 2, checkpoint at step 15), then resumed.
"${train[@]}" --epochs 3 -o part.safetensors --steps 17 --checkpoint-every 5 >/dev/null 2>&1
"$cnnkit" train --resume part.ckpt.safetensors --steps 0 >resume.out 2>resume.err \
    && same_weights part.safetensors full.safetensors && ok "resume mid-epoch ends with the same weights, bit for bit" \
    || { bad "resume mid-epoch"; cat resume.err; }
# Resumed after each epoch.
"${train[@]}" --epochs 1 -o ep.safetensors >/dev/null 2>&1
"$cnnkit" train --resume ep.ckpt.safetensors --epochs 2 >/dev/null 2>&1
"$cnnkit" train --resume ep.ckpt.safetensors --epochs 3 >/dev/null 2>&1
same_weights ep.safetensors full.safetensors && ok "resume at epoch boundaries ends with the same weights" || bad "resume at epochs"

# SIGKILL at a random moment, three times, then resume to the end.
for i in 1 2 3; do
    rm -f kill.*
    "${train[@]}" --epochs 3 -o kill.safetensors --checkpoint-every 3 >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ -e kill.ckpt.safetensors ]; then
        "$cnnkit" train --resume kill.ckpt.safetensors >/dev/null 2>&1
    else
        "${train[@]}" --epochs 3 -o kill.safetensors >/dev/null 2>&1 # killed before any checkpoint
    fi
    same_weights kill.safetensors full.safetensors && ok "SIGKILL $i and resume lose nothing" || bad "SIGKILL $i"
done

# A diverging run stops with a clear message and keeps the last good checkpoint.
"${train[@]}" --epochs 3 --optim sgd --lr 1e38 -o nan.safetensors --checkpoint-every 1 >nan.out 2>nan.err
rc=$?
[ $rc -eq 1 ] && grep -q "loss is \(NaN\|infinite\)" nan.err && grep -q "last good checkpoint" nan.err \
    && ok "NaN loss stops the run" || { bad "NaN loss (exit $rc)"; cat nan.err; }
"$stdiff" nan.ckpt.safetensors net.0.weight nan.ckpt.safetensors net.0.weight 1e30 >/dev/null \
    && ok "the last good checkpoint is finite" || bad "checkpoint after NaN"

# eval and predict.
"$cnnkit" eval lenet --weights full.safetensors --limit 1000 >eval.out 2>eval.err \
    && grep -q "accuracy" eval.out && grep -q "ankle boot" eval.out && grep -q "confusion matrix" eval.out \
    && ok "eval prints accuracy per class and the confusion matrix" || { bad "eval"; cat eval.err; }
printf 'P2\n# a test\n4 4\n255\n0 0 0 0\n0 255 255 0\n0 255 255 0\n0 0 0 0\n' >img.pgm
"$cnnkit" predict lenet --weights full.safetensors --top 2 img.pgm >pred.out 2>pred.err \
    && [ "$(grep -c '%' pred.out)" = 2 ] && ok "predict prints the top classes" || { bad "predict"; cat pred.err; }
printf 'P5\n4 4\n255\nxx' >short.pgm
"$cnnkit" predict lenet --weights full.safetensors short.pgm >/dev/null 2>err.txt
[ $? -eq 1 ] && grep -q "short.pgm" err.txt && ok "a corrupt image is an error" || bad "corrupt image"
"$cnnkit" train lenet --data /nonexistent --epochs 1 >/dev/null 2>err.txt
[ $? -eq 1 ] && grep -q "apt-get install dataset-fashion-mnist" err.txt && ok "a missing data set says how to install it" || bad "missing data set"
"$cnnkit" train --resume full.ckpt.safetensors --lr 0.1 >/dev/null 2>&1
[ $? -eq 2 ] && ok "--resume refuses other options" || bad "--resume with options"

# A run that would not fit in memory is refused with the figure before it
# writes anything (CNNKIT_MEMORY_LIMIT stands in for the machine's memory).
refused() { # NAME PATTERN CMD...: exit 1, one line on stderr matching PATTERN, nothing on stdout
    local name=$1 pattern=$2
    shift 2
    "$@" >ref.out 2>ref.err
    local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <ref.err)" -eq 1 ] && grep -q -- "$pattern" ref.err && [ ! -s ref.out ]; then
        ok "$name"
    else
        bad "$name (exit $rc)"
        cat ref.err
    fi
}
CNNKIT_MEMORY_LIMIT=16M refused "train refused, with the batch that fits" \
    "cnnkit train: lenet at batch 4096 needs .* (weights 241.0 KiB, gradients 241.0 KiB, optimizer state 482.1 KiB, activations .*, data .*) but 16.0 MiB is available (CNNKIT_MEMORY_LIMIT); try --batch [0-9]*$" \
    "${train[@]}" --batch 4096 --epochs 1 -o big.safetensors
[ ! -e big.safetensors ] && [ ! -e big.ckpt.safetensors ] && ok "a refused training run writes no file" || bad "refused training wrote files"
CNNKIT_MEMORY_LIMIT=4M refused "eval refused, with the batch that fits" "cnnkit eval: lenet at batch 4096 needs .* but 4.0 MiB is available (CNNKIT_MEMORY_LIMIT); try --batch [0-9]*$" \
    "$cnnkit" eval lenet --weights full.safetensors --limit 1000 --batch 4096
CNNKIT_MEMORY_LIMIT=100K refused "predict refused" "cnnkit predict: lenet at batch 1 needs .* but [0-9.]* KiB is available (CNNKIT_MEMORY_LIMIT)$" \
    "$cnnkit" predict lenet --weights full.safetensors img.pgm

# PyTorch loads the weights (strict) and measures the same test accuracy.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    acc_c=$(sed -n 's/.*accuracy \([0-9.]*\)$/\1/p' eval.out | head -1)
    acc_t=$(/usr/bin/python3 "$ref/torch_eval.py" full.safetensors "$data" 1000)
    [ -n "$acc_c" ] && [ "$acc_c" = "$acc_t" ] && ok "PyTorch loads the weights: accuracy $acc_t = cnnkit's $acc_c" \
        || bad "PyTorch accuracy $acc_t vs cnnkit $acc_c"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
