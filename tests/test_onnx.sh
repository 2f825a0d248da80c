#!/usr/bin/env bash
# test_onnx.sh CNNKIT STDIFF ONNX_FIXTURE TESTS WORKDIR - ONNX export end to end.
#
# For LeNet (PyTorch's weights in tests/fixtures), AlexNet (PyTorch's weights
# written at test time by tests/ref/make_alexnet.py, 187 MB, once) and every
# layer fixture, with a fixed batch and with --dynamic-batch:
#   - tests/ref/check_onnx.py: onnx.checker.check_model(full_check=True),
#     one value_info per intermediate tensor, and onnx.shape_inference giving
#     cnnkit's shapes (Debian's python3-onnx);
#   - ONNX Runtime (tests/ort/run.js, npm onnxruntime-node) on the fixture's
#     input must give PyTorch's output and cnnkit's (`cnnkit run`, or
#     onnx_fixture's run for a layer) within 1e-4; a dynamic-batch file runs
#     at a batch size it was not exported with (tests/ort/tile.js).
# Layers ONNX cannot express exactly must be refused with one line naming
# the layer, and leave no file. Skips (77) without python3-onnx, node or
# tests/ort/node_modules (scripts/setup.sh installs all three).
set -u
cnnkit=$1 stdiff=$2 onnx_fixture=$3 tests=$4 work=$5
fx=$tests/fixtures ref=$tests/ref ort=$tests/ort
py=/usr/bin/python3
tol=1e-4

if ! "$py" -c 'import onnx' 2>/dev/null; then
    echo "skipped: $py has no onnx (apt-get install python3-onnx)"
    exit 77
fi
if ! command -v node >/dev/null || ! (cd "$ort" && node -e "require('onnxruntime-node')") 2>/dev/null; then
    echo "skipped: no node or no $ort/node_modules/onnxruntime-node (npm ci --ignore-scripts --prefix tests/ort)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# maxdiff A B: stdiff's number, or the reason it failed, on one line.
maxdiff() {
    local out
    out=$("$stdiff" "$1" output "$2" output "$tol" 2>&1)
    local rc=$?
    echo "${out#max abs diff = }" | head -1
    return $rc
}

# check NAME EXPORT IN CNNKIT [TORCH]: EXPORT (a command writing $work/m.onnx)
# must write a file the checker accepts, and ONNX Runtime on IN's tensor
# 'input' must match cnnkit's output on it (CNNKIT) and, when given,
# PyTorch's (TORCH's tensor 'output').
check() {
    local name=$1 export=$2 in=$3 cnnkit_out=$4 torch_out=${5:-} f=$work/m.onnx
    if ! eval "$export" >"$work/export.log" 2>&1; then
        bad "$name: export failed: $(cat "$work/export.log")"
        return
    fi
    if ! "$py" "$ref/check_onnx.py" "$f" >"$work/check.log" 2>&1; then
        bad "$name: $(tail -1 "$work/check.log")"
        return
    fi
    if ! node "$ort/run.js" "$f" "$in" "$work/ort.safetensors" >"$work/ort.log" 2>&1; then
        bad "$name: onnxruntime: $(tail -1 "$work/ort.log")"
        return
    fi
    local dc dt="" ok=1
    dc=$(maxdiff "$work/ort.safetensors" "$cnnkit_out") || ok=0
    if [ -n "$torch_out" ]; then
        dt=$(maxdiff "$work/ort.safetensors" "$torch_out") || ok=0
        dt="PyTorch ${dt%% over*}, "
    fi
    if [ $ok -eq 1 ]; then
        ok "$name: checker, value_info, shapes ok; onnxruntime's max abs diff vs ${dt}cnnkit ${dc%% (tol*}"
    else
        bad "$name: onnxruntime vs ${dt}cnnkit $dc"
    fi
    rm -f "$f"
}

# refuse NAME PATTERN CMD...: exit 1, one stderr line matching PATTERN, no file left.
refuse() {
    local name=$1 pattern=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$? lines left
    lines=$(wc -l <"$work/err")
    left=$(find "$work" -name 'refused.onnx*' | wc -l)
    if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -q -- "$pattern" "$work/err" && [ "$left" -eq 0 ]; then
        ok "$name: refused: $(cut -c1-110 "$work/err")..."
    else
        bad "$name (exit $rc, $lines stderr lines, $left files left)"
        cat "$work/err"
    fi
}

# batch IO: the batch size of IO's input.
batch() { node -e "console.log(require('$ort/st.js').read('$1').input.shape[0])"; }

# Layer fixtures, each as Sequential(layer) with PyTorch's weights: every one
# of make_fixtures.py's LAYERS must be in onnx_fixture's table.
layers=$(grep -o '^    ("[a-z0-9_]*"' "$ref/make_fixtures.py" | tr -d ' ("')
known=$("$onnx_fixture" list)
for name in $layers; do
    grep -qx "$name" <<<"$known" || bad "$name: layer fixture missing from tests/tools/onnx_fixture.c"
done
for name in $known; do
    io=$fx/$name.io.safetensors
    case $name in
    adaptiveavgpool)
        refuse "$name" "0 AdaptiveAvgPool2d(output_size=(3, 2)): .*input 7x5 is not a multiple of output_size 3x2" \
            "$onnx_fixture" "$fx" "$name" export "$work/refused.onnx"
        continue ;;
    batchnorm_batchstats)
        refuse "$name" "track_running_stats=False" "$onnx_fixture" "$fx" "$name" export "$work/refused.onnx"
        continue ;;
    lrn_even)
        refuse "$name" "LocalResponseNorm(4, .*even size" "$onnx_fixture" "$fx" "$name" export "$work/refused.onnx"
        continue ;;
    esac
    "$onnx_fixture" "$fx" "$name" run "$io" "$work/cnnkit.safetensors" || { bad "$name: cnnkit run"; continue; }
    check "$name" "'$onnx_fixture' '$fx' '$name' export '$work/m.onnx'" "$io" "$work/cnnkit.safetensors" "$io"
    n=$(batch "$io")
    node "$ort/tile.js" "$io" $((n + 2)) "$work/tiled.safetensors"
    "$onnx_fixture" "$fx" "$name" run "$work/tiled.safetensors" "$work/cnnkit.safetensors"
    check "$name --dynamic-batch (run at batch $((n + 2)))" \
        "'$onnx_fixture' '$fx' '$name' export '$work/m.onnx' --dynamic-batch" \
        "$work/tiled.safetensors" "$work/cnnkit.safetensors" "$work/tiled.safetensors"
done

# model NAME MODEL WEIGHTS IO: `cnnkit export` of a built-in model or a model
# file with PyTorch's weights, fixed and dynamic batch.
model() {
    local name=$1 spec=$2 w=$3 io=$4 n shape
    n=$(batch "$io")
    shape=$(node -e "console.log(require('$ort/st.js').read('$io').input.shape.join(','))")
    "$cnnkit" run "$spec" --weights "$w" --input "$io" -o "$work/cnnkit.safetensors" 2>/dev/null
    check "$name" "'$cnnkit' export '$spec' --weights '$w' --input $shape -o '$work/m.onnx'" "$io" \
        "$work/cnnkit.safetensors" "$io"
    node "$ort/tile.js" "$io" $((n + 1)) "$work/tiled.safetensors"
    "$cnnkit" run "$spec" --weights "$w" --input "$work/tiled.safetensors" -o "$work/cnnkit.safetensors" 2>/dev/null
    check "$name --dynamic-batch (run at batch $((n + 1)))" \
        "'$cnnkit' export '$spec' --weights '$w' --input $shape --dynamic-batch -o '$work/m.onnx'" \
        "$work/tiled.safetensors" "$work/cnnkit.safetensors" "$work/tiled.safetensors"
}
model lenet lenet "$fx/lenet.weights.safetensors" "$fx/lenet.io.safetensors"
model "models/lenet.py" "$tests/../models/lenet.py" "$fx/lenet.weights.safetensors" "$fx/lenet.io.safetensors"
if "$py" -c 'import torch' 2>/dev/null && "$py" "$ref/make_alexnet.py" "$work/alexnet" --batch 2 >/dev/null; then
    model alexnet alexnet "$work/alexnet/alexnet.weights.safetensors" "$work/alexnet/alexnet.io.safetensors"
    rm -rf "$work/alexnet"
else
    bad "alexnet: $ref/make_alexnet.py failed (python3-torch?)"
fi

# TVStyle (models/tvstyle.py: BatchNorm, LRN, ceil_mode, dilation, groups,
# AdaptiveAvgPool2d((3, 3)), Dropout inside the classifier) with PyTorch's
# weights: at its fixture's 32x32 the pool sees 8x8, which no AveragePool
# equals, so the export is refused; at 36x36 it sees 9x9 and is exported.
tv=$tests/../models/tvstyle.py tvw=$fx/tvstyle.weights.safetensors
refuse "models/tvstyle.py at 32x32" \
    "avgpool AdaptiveAvgPool2d(output_size=(3, 3)): ONNX has no adaptive pooling, and input 8x8 is not a multiple of output_size 3x3" \
    "$cnnkit" export "$tv" --weights "$tvw" --input 2,3,32,32 -o "$work/refused.onnx"
node "$ort/make_input.js" 2,3,36,36 7 "$work/in36.safetensors"
"$cnnkit" run "$tv" --weights "$tvw" --input "$work/in36.safetensors" -o "$work/cnnkit.safetensors" 2>/dev/null
check "models/tvstyle.py at 36x36" "'$cnnkit' export '$tv' --weights '$tvw' --input 2,3,36,36 -o '$work/m.onnx'" \
    "$work/in36.safetensors" "$work/cnnkit.safetensors"
node "$ort/make_input.js" 3,3,36,36 8 "$work/in36.safetensors"
"$cnnkit" run "$tv" --weights "$tvw" --input "$work/in36.safetensors" -o "$work/cnnkit.safetensors" 2>/dev/null
check "models/tvstyle.py at 36x36 --dynamic-batch (run at batch 3)" \
    "'$cnnkit' export '$tv' --weights '$tvw' --input 1,3,36,36 --dynamic-batch -o '$work/m.onnx'" \
    "$work/in36.safetensors" "$work/cnnkit.safetensors"

# The command's errors: one line, exit 1 (2 for bad usage), no file.
refuse "export of a shape that does not fit" "net.7 Linear(in_features=400, out_features=120, bias=True): expects 400 input features, got 576" \
    "$cnnkit" export lenet --input 1,1,32,32 -o "$work/refused.onnx"
refuse "export into a missing folder" "cannot create" "$cnnkit" export lenet -o "$work/no/such/dir/refused.onnx"
"$cnnkit" export lenet >/dev/null 2>&1
[ $? -eq 2 ] && ok "export without -o is bad usage" || bad "export without -o is bad usage"
"$cnnkit" export --help >/dev/null 2>&1 && ok "export --help" || bad "export --help"

echo "$pass passed, $fail failed"
rm -rf "$work"
[ "$fail" -eq 0 ]
