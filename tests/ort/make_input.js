#!/usr/bin/env node
// make_input.js SHAPE SEED OUT.safetensors
// Writes a tensor 'input' of SHAPE (e.g. 2,3,36,36) with values uniform in
// [0, 1) from a seeded xorshift32, for inputs no fixture has.
'use strict';
const st = require('./st');

const [shapeText, seedText, out] = process.argv.slice(2);
if (!out) {
    console.error('usage: node make_input.js SHAPE SEED OUT.safetensors');
    process.exit(2);
}
const shape = shapeText.split(',').map(Number);
const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
let s = (Number(seedText) >>> 0) || 1;
for (let i = 0; i < data.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    data[i] = s / 4294967296;
}
st.write(out, {input: {shape, data}});
