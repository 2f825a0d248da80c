#!/usr/bin/env bash
# test_modelfile_cli.sh CNNKIT STDIFF ROOT WORKDIR - model files through the
# command: print, summary and run on models/*.{txt,py} against PyTorch's
# fixtures, and errors as FILE:LINE:COL with the line and a caret, exit 1.
set -u
cnnkit=$1 stdiff=$2 root=$3 work=$4
fx=$root/tests/fixtures models=$root/models
rm -rf "$work" && mkdir -p "$work"
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# same NAME FILE CMD...: the command exits 0 and prints FILE exactly.
same() {
    local name=$1 want=$2
    shift 2
    if "$@" >"$work/out" 2>"$work/err" && cmp -s "$work/out" "$want"; then
        ok "$name"
    else
        bad "$name"
        diff "$work/out" "$want" | head -5
        cat "$work/err"
    fi
}

# file_error NAME FILE WHERE PATTERN CMD...: exit 1, nothing on stdout, and on
# stderr three lines: "WHERE message" matching PATTERN, the line, a caret.
file_error() {
    local name=$1 file=$2 where=$3 pattern=$4
    shift 4
    printf '%s' "$file_text" >"$work/$file"
    (cd "$work" && "$@" >"$work/out" 2>"$work/err")
    local rc=$? lines
    lines=$(wc -l <"$work/err")
    if [ "$rc" -eq 1 ] && [ "$lines" -eq 3 ] && [ ! -s "$work/out" ] &&
        head -1 "$work/err" | grep -q -- "^$where" && head -1 "$work/err" | grep -q -- "$pattern" &&
        tail -1 "$work/err" | grep -q '^ *^$'; then
        ok "$name"
    else
        bad "$name (exit $rc, $lines stderr lines)"
        cat "$work/err"
    fi
}

# Printing: each file prints what PyTorch prints for it.
same "print models/lenet.py (the notes' class) equals PyTorch" "$fx/lenet.print.txt" "$cnnkit" print "$models/lenet.py"
same "print models/lenet.txt round-trips" "$fx/lenet.print.txt" "$cnnkit" print "$models/lenet.txt"
same "print models/alexnet.txt round-trips" "$fx/alexnet.print.txt" "$cnnkit" print "$models/alexnet.txt"
same "print models/tvstyle.py equals PyTorch" "$models/tvstyle.txt" "$cnnkit" print "$models/tvstyle.py"
same "print models/tvstyle.txt round-trips" "$models/tvstyle.txt" "$cnnkit" print "$models/tvstyle.txt"
same "print of the notes' printed text" "$fx/lenet.print.txt" "$cnnkit" print "$root/tests/modelfiles/notes_lenet.txt"

# Shapes: the notes' loop, at the default input and at PyTorch's fixture input.
same "summary --trace models/lenet.py equals PyTorch's loop" "$fx/lenet.trace.txt" "$cnnkit" summary "$models/lenet.py" --trace
same "summary --trace models/alexnet.txt equals PyTorch's loop" "$fx/alexnet.trace.txt" "$cnnkit" summary "$models/alexnet.txt" --trace
same "summary --trace models/tvstyle.py at 2,3,32,32 equals PyTorch's loop" "$fx/tvstyle.trace.txt" "$cnnkit" summary "$models/tvstyle.py" --input 2,3,32,32 --trace
if "$cnnkit" summary "$models/tvstyle.txt" >"$work/summary" 2>"$work/err" &&
    grep -q '^TVStyle  *\[1, 10\]' "$work/summary" && grep -q 'classifier.5 (Linear)' "$work/summary"; then
    ok "summary of a file picks an input (1,3,28,28)"
else
    bad "summary of a file"
    cat "$work/err"
fi
"$cnnkit" summary "$models/lenet.py" --json >"$work/lenet.json" 2>"$work/err" &&
    grep -q '"total_params":[[:space:]]*61706' "$work/lenet.json" && ok "summary --json of lenet.py totals 61,706" || bad "summary --json of lenet.py"

# Running: the files with PyTorch's weights give PyTorch's outputs.
for f in lenet.py lenet.txt; do
    "$cnnkit" run "$models/$f" --weights "$fx/lenet.weights.safetensors" --input "$fx/lenet.io.safetensors" -o "$work/y.safetensors" 2>"$work/err" &&
        "$stdiff" "$work/y.safetensors" output "$fx/lenet.io.safetensors" output 1e-4 && ok "run models/$f equals PyTorch" || bad "run models/$f"
done
for f in tvstyle.py tvstyle.txt; do
    "$cnnkit" run "$models/$f" --weights "$fx/tvstyle.weights.safetensors" --input "$fx/tvstyle.io.safetensors" -o "$work/y.safetensors" 2>"$work/err" &&
        "$stdiff" "$work/y.safetensors" output "$fx/tvstyle.io.safetensors" output 1e-4 && ok "run models/$f equals PyTorch" || bad "run models/$f"
done

# Errors: FILE:LINE:COL, the line, a caret; exit 1.
file_text=$'import torch\nfrom torch import nn\n\nnet = nn.Sequential(\n    nn.Conv2d(1, 6, 5), nn.MaxPool2d(2, 2 nn.ReLU(),\n)\n'
file_error "unclosed call" comma.py "comma.py:5:43: " "expected ',' or ')' to close 'nn.MaxPool2d(' opened at 5:25" "$cnnkit" print comma.py
file_text=$'net = nn.Sequential(nn.Conv3d(1, 6, 5))\n'
file_error "unsupported layer" conv3d.py "conv3d.py:1:21: " "Conv3d is not supported; supported: Conv2d, Linear" "$cnnkit" summary conv3d.py
file_text=$'Net(\n  (fc): Linear(in_features=4)\n)\n'
file_error "missing argument" missing.txt "missing.txt:2:9: " "missing its required argument 'out_features'" "$cnnkit" run missing.txt --input x -o y
file_text=$'Sequential(\n  (0): ReLU()\n  (0): Tanh()\n)\n'
file_error "duplicate name" dup.txt "dup.txt:3:4: " "duplicate module name '0'" "$cnnkit" print dup.txt
file_text=$'class LeNet(nn.Module):\n    def __init__(self):\n        super().__init__()\n        for i in range(3):\n            pass\n'
file_error "unsupported statement" loop.py "loop.py:4:9: " "'for' statements are not supported" "$cnnkit" print loop.py
file_text=$'net = nn.Sequential(nn.Dropout(p=True))\n'
file_error "wrong type" type.py "type.py:1:34: " "p must be a float, got True" "$cnnkit" print type.py

# A shape error names the layer's place in the file; one line, exit 1.
printf 'net = nn.Sequential(\n    nn.Conv2d(1, 6, 5), nn.Flatten(),\n    nn.Linear(100, 10))\n' >"$work/shape.py"
"$cnnkit" summary "$work/shape.py" --input 1,1,28,28 >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "cnnkit summary: $work/shape.py:3:5: 2 Linear(in_features=100, out_features=10, bias=True): expects 100 input features, got 3456" "$work/err" &&
    ok "shape error names FILE:LINE:COL" || { bad "shape error (exit $rc)"; cat "$work/err"; }
# No input fits: print still works; summary asks for --input.
"$cnnkit" print "$work/shape.py" >"$work/out" 2>"$work/err" && ok "print needs no input shape" || bad "print needs no input shape"
"$cnnkit" summary "$work/shape.py" >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "pass --input N,C,H,W" "$work/err" && ok "summary without a fitting input asks for --input" || { bad "summary asks for --input (exit $rc)"; cat "$work/err"; }
"$cnnkit" print "$work/missing.py" >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "cnnkit print: $work/missing.py: No such file or directory" "$work/err" &&
    ok "a missing file is one line, exit 1" || { bad "missing file (exit $rc)"; cat "$work/err"; }

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
