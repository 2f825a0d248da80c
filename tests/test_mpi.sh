#!/usr/bin/env bash
# test_mpi.sh CNNKIT STDIFF MODELS WORKDIR - data-parallel training on
# loopback: 2 and 3 processes (an uneven split) end with the weights of one
# process with the same global batch and seed; BatchNorm's statistics are per
# rank, as in PyTorch's DDP, so that model is compared with --shards, which
# computes the same in one process; a killed rank ends the job, and the last
# epoch's checkpoint still loads.
set -u
cnnkit=$1 stdiff=$2 models=$3 work=$4
if ! command -v mpirun >/dev/null; then
    echo "skipped: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
if ! ldd "$cnnkit" | grep -q libmpi; then
    echo "skipped: this cnnkit was built without MPI"
    exit 77
fi
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "skipped: no Fashion-MNIST"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
mpi=(mpirun --allow-run-as-root --oversubscribe)
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
# compare A B KEYS...: every tensor within 1e-5, the max difference printed.
compare() {
    local a=$1 b=$2 worst=0
    shift 2
    for k in "$@"; do
        out=$("$stdiff" "$a" "$k" "$b" "$k" 1e-5) || { echo "  $k: $out"; return 1; }
        echo "  $k: $out"
    done
}

lenet_keys=(net.0.weight net.0.bias net.3.weight net.3.bias net.7.weight net.7.bias net.9.weight net.9.bias net.11.weight net.11.bias)
T=(train lenet --limit 1024 --batch 128 --threads 1 --seed 3 --lr 0.9 --momentum 0.5 --epochs 2 --steps 12)
"$cnnkit" "${T[@]}" -o one.safetensors >one.out 2>&1
for np in 2 3; do
    "${mpi[@]}" -np $np "$cnnkit" "${T[@]}" -o np$np.safetensors >np$np.out 2>&1 \
        && compare one.safetensors np$np.safetensors "${lenet_keys[@]}" \
        && ok "LeNet on $np processes equals one process" || { bad "LeNet on $np processes"; tail -5 np$np.out; }
done
[ "$(grep -c '^epoch [0-9] loss' np2.out)" = 1 ] && [ "$(grep -c '^training lenet' np2.out)" = 1 ] \
    && ok "rank 0 alone prints" || bad "rank 0 alone prints"

bn_keys=(0.weight 0.bias 1.weight 1.bias 1.running_mean 1.running_var 4.weight 5.weight 5.bias 5.running_mean 5.running_var 9.weight 13.bias)
B=(train "$models/lenet_bn.py" --limit 1024 --batch 96 --threads 1 --seed 4 --lr 0.5 --momentum 0.5 --epochs 1 --steps 8)
for np in 2 3; do
    "$cnnkit" "${B[@]}" --shards $np -o bn_shards$np.safetensors >bn_shards$np.out 2>&1
    "${mpi[@]}" -np $np "$cnnkit" "${B[@]}" -o bn_np$np.safetensors >bn_np$np.out 2>&1 \
        && compare bn_shards$np.safetensors bn_np$np.safetensors "${bn_keys[@]}" \
        && "$stdiff" bn_shards$np.safetensors 1.num_batches_tracked bn_np$np.safetensors 1.num_batches_tracked 0 >/dev/null \
        && ok "BatchNorm LeNet on $np processes equals --shards $np" || { bad "BatchNorm LeNet on $np processes"; tail -5 bn_np$np.out; }
done

# A rank killed during the second epoch ends the job; epoch 1's checkpoint loads.
# Epochs of 30,000 images take a second or more, so the kill lands in epoch 2.
K=(train lenet --limit 30000 --batch 64 --threads 1 --seed 5 --epochs 3)
CNNKIT_MPI_TIMEOUT=20 "${mpi[@]}" -np 2 "$cnnkit" "${K[@]}" -o kill.safetensors >kill.out 2>&1 &
job=$!
for _ in $(seq 1 1200); do
    grep -q '^epoch 1 loss' kill.out 2>/dev/null && break
    sleep 0.05
done
victim=$(pgrep -f "cnnkit train lenet --limit 30000" | tail -1)
start=$(date +%s)
[ -n "$victim" ] && kill -9 "$victim"
wait $job
rc=$?
took=$(($(date +%s) - start))
[ $rc -ne 0 ] && [ $took -le 30 ] && ok "a killed rank ends the job in ${took}s (exit $rc)" || bad "killed rank: exit $rc after ${took}s"
grep -E -i "killed|signal|no answer|abort" kill.out | head -2
"$cnnkit" train --resume kill.ckpt.safetensors --epochs 1 >resume.out 2>&1 \
    && grep -q "resuming lenet from kill.ckpt.safetensors at epoch 2" resume.out \
    && ok "the checkpoint of the last completed epoch loads" || { bad "checkpoint after a killed rank"; cat resume.out; }

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
