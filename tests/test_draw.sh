#!/usr/bin/env bash
# test_draw.sh CNNKIT MODELS_DIR WORKDIR - `cnnkit draw` end to end: every
# style for every zoo model, every model file under MODELS_DIR and the LeNet
# vs AlexNet comparison; each SVG parsed by xmllint and rendered by
# rsvg-convert with nothing on stderr, each PNG decoded, each DOT a digraph;
# then exit codes, one-line errors and no partial files.
set -u
cnnkit=$1 models=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

for tool in xmllint rsvg-convert /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "FAIL $tool is missing (scripts/setup.sh installs it)"; exit 1; }
done

# png_ok FILE: a PNG that decodes: signature, chunk CRCs, and IDAT inflating to
# exactly the rows its header announces.
png_ok() {
    /usr/bin/python3 - "$1" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
    assert zlib.crc32(kind + body) == crc, "bad CRC in %s" % kind
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    elif kind == b"IEND":
        break
    pos += 12 + n
w, h, depth, colour = ihdr[:4]
channels = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
raw = zlib.decompress(idat)
assert len(raw) == h * (1 + w * channels * depth // 8), "IDAT does not match the header"
assert w > 100 and h > 100, "too small: %dx%d" % (w, h)
EOF
}

# svg_ok NAME FILE: well-formed XML, self-contained, rendered without a word on stderr.
svg_ok() {
    local name=$1 f=$2
    if ! xmllint --noout "$f" 2>"$work/xmlerr"; then
        bad "$name: xmllint"; head -5 "$work/xmlerr"; return
    fi
    if grep -qE 'href=|@import|url\([^#]' "$f"; then
        bad "$name: refers to something outside the file"; return
    fi
    if ! rsvg-convert -o "$work/render.png" "$f" 2>"$work/rsvgerr" || [ -s "$work/rsvgerr" ]; then
        bad "$name: rsvg-convert"; head -5 "$work/rsvgerr"; return
    fi
    if ! png_ok "$work/render.png" 2>"$work/pngerr"; then
        bad "$name: rsvg-convert's PNG"; tail -1 "$work/pngerr"; return
    fi
    ok "$name: valid SVG, rendered cleanly"
}

# draw_all NAME MODEL...: every style in every format.
draw_all() {
    local name=$1
    shift
    local style
    for style in blocks graph planes; do
        local base="$work/$name.$style"
        if ! "$cnnkit" draw "$@" --style $style -o "$base.svg" >/dev/null 2>"$work/err"; then
            bad "$name $style: draw failed"; cat "$work/err"; continue
        fi
        svg_ok "$name $style" "$base.svg"
        if "$cnnkit" draw "$@" --style $style -o "$base.png" >/dev/null 2>"$work/err" &&
            png_ok "$base.png" 2>"$work/pngerr"; then
            ok "$name $style: PNG decodes"
        else
            bad "$name $style: PNG"; cat "$work/err" "$work/pngerr"
        fi
        if "$cnnkit" draw "$@" --style $style -o "$base.dot" >/dev/null 2>"$work/err" &&
            head -1 "$base.dot" | grep -q '^digraph' && tail -1 "$base.dot" | grep -q '^}$'; then
            if command -v dot >/dev/null && ! dot -Tsvg "$base.dot" -o "$base.dot.svg" 2>"$work/err"; then
                bad "$name $style: dot rejects the DOT"; cat "$work/err"
            else
                ok "$name $style: DOT"
            fi
        else
            bad "$name $style: DOT"; cat "$work/err"
        fi
    done
}

for m in $("$cnnkit" zoo | awk 'NR > 1 { print $1 }'); do
    draw_all "$m" "$m"
done
draw_all lenet_vs_alexnet lenet alexnet
shopt -s nullglob
for f in "$models"/*.txt "$models"/*.py; do
    draw_all "file_$(basename "$f")" "$f"
done

# The book's labels are real, searchable text.
for label in '5x5 Conv(6), pad 2, sigmoid' '2x2 AvgPool, stride 2' 'FC(120), sigmoid' 'FC(10)' \
    'Input 28x28 image'; do
    grep -qF ">$label</text>" "$work/lenet.blocks.svg" && ok "lenet.svg says '$label'" ||
        bad "lenet.svg says '$label'"
done
grep -qF '>&lt;6x1x5x5&gt;</text>' "$work/lenet.graph.svg" && grep -qF '>1x6x28x28</text>' "$work/lenet.graph.svg" &&
    ok "lenet graph shows W <6x1x5x5> and 1x6x28x28" || bad "lenet graph shows W <6x1x5x5> and 1x6x28x28"
grep -qF '>6@28x28</text>' "$work/lenet.planes.svg" && ok "lenet planes shows 6@28x28" ||
    bad "lenet planes shows 6@28x28"

# expect NAME CODE CMD...: exit CODE; for 1 and 2, one line on stderr.
expect() {
    local name=$1 code=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$? lines
    lines=$(wc -l <"$work/err")
    if [ "$rc" -eq "$code" ] && { [ "$code" -eq 0 ] || [ "$lines" -eq 1 ]; }; then
        ok "$name"
    else
        bad "$name (exit $rc, wanted $code; $lines stderr lines)"; cat "$work/err"
    fi
}
leftovers() { ls -A "$1" | grep -c '\.tmp\.' ; }

expect "draw --help" 0 "$cnnkit" draw --help
expect "a .pdf output is bad usage" 2 "$cnnkit" draw lenet -o "$work/x.pdf"
[ ! -e "$work/x.pdf" ] && ok "no .pdf written" || bad "no .pdf written"
expect "an unknown style is bad usage" 2 "$cnnkit" draw lenet --style boxes -o "$work/x.svg"
expect "no MODEL is bad usage" 2 "$cnnkit" draw -o "$work/x.svg"
expect "no -o is bad usage" 2 "$cnnkit" draw lenet
expect "a bad --input is bad usage" 2 "$cnnkit" draw lenet --input 1,x -o "$work/x.svg"
expect "an unknown model fails" 1 "$cnnkit" draw nosuchnet -o "$work/x.svg"
expect "a shape error fails" 1 "$cnnkit" draw lenet --input 1,1,32,32 -o "$work/x.svg"
grep -q 'net.7' "$work/err" && ok "the shape error names the layer" || bad "the shape error names the layer"
[ ! -e "$work/x.svg" ] && ok "nothing written after errors" || bad "nothing written after errors"
mkdir -p "$work/ro"
for ext in svg png dot; do
    expect "an unwritable .$ext fails" 1 "$cnnkit" draw lenet -o "$work/missing/x.$ext"
    mkdir -p "$work/ro/taken.$ext" # a folder where the file would go: the rename fails
    expect "a .$ext over a folder fails" 1 "$cnnkit" draw lenet -o "$work/ro/taken.$ext"
    [ -d "$work/ro/taken.$ext" ] && ok "the folder is untouched" || bad "the folder is untouched"
done
[ "$(leftovers "$work/ro")" -eq 0 ] && ok "no temporary files left" || bad "no temporary files left"
expect "--input applies to every model" 0 "$cnnkit" draw lenet lenet --style graph --input 2,1,28,28 \
    -o "$work/two.svg"
[ "$(grep -cF '>2x6x28x28</text>' "$work/two.svg")" -eq 4 ] && ok "both columns have batch 2" ||
    bad "both columns have batch 2"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
