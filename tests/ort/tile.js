#!/usr/bin/env node
// tile.js IO.safetensors B OUT.safetensors
// Writes 'input' and 'output' of IO with batch B, cycling through the
// samples along dimension 0: the same inputs and expected outputs at a batch
// size the ONNX file was not exported with (every layer cnnkit exports
// treats the samples of a batch independently, except a Softmax over dim 0,
// which the fixtures do not have).
'use strict';
const st = require('./st');

const [ioPath, batchText, out] = process.argv.slice(2);
const batch = Number(batchText);
if (!out || !(batch >= 1)) {
    console.error('usage: node tile.js IO.safetensors B OUT.safetensors');
    process.exit(2);
}
const io = st.read(ioPath);
const tiled = {};
for (const name of ['input', 'output']) {
    const t = io[name];
    if (!t) {
        console.error(`tile.js: ${ioPath}: no F32 tensor '${name}'`);
        process.exit(1);
    }
    const n = t.shape[0], per = t.data.length / n;
    const data = new Float32Array(batch * per);
    for (let b = 0; b < batch; b++) data.set(t.data.subarray((b % n) * per, (b % n + 1) * per), b * per);
    tiled[name] = {shape: [batch, ...t.shape.slice(1)], data};
}
st.write(out, tiled);
