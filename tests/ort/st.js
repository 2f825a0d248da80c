// st.js - the smallest safetensors reader and writer the ONNX tests need:
// F32 tensors only, little-endian, header as in tests/ref/st.py.
'use strict';
const fs = require('fs');

// Returns {name: {shape, data: Float32Array}} for every tensor in path.
function read(path) {
    const buf = fs.readFileSync(path);
    if (buf.length < 8) throw new Error(`${path}: too short for a safetensors file`);
    const n = Number(buf.readBigUInt64LE(0));
    if (8 + n > buf.length) throw new Error(`${path}: header length ${n} past the end`);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const out = {};
    for (const [name, t] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        const [begin, end] = t.data_offsets;
        const numel = t.shape.reduce((a, b) => a * b, 1);
        if (t.dtype !== 'F32') continue;
        if (end - begin !== numel * 4 || 8 + n + end > buf.length)
            throw new Error(`${path}: ${name}: bad data_offsets`);
        const data = new Float32Array(numel);
        for (let i = 0; i < numel; i++) data[i] = buf.readFloatLE(8 + n + begin + 4 * i);
        out[name] = {shape: t.shape, data};
    }
    return out;
}

// Writes {name: {shape, data}} as F32 tensors.
function write(path, tensors) {
    const header = {};
    let offset = 0;
    for (const [name, t] of Object.entries(tensors)) {
        header[name] = {dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length]};
        offset += 4 * t.data.length;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const buf = Buffer.alloc(8 + json.length + offset);
    buf.writeBigUInt64LE(BigInt(json.length), 0);
    buf.write(json, 8, 'utf8');
    let p = 8 + json.length;
    for (const t of Object.values(tensors))
        for (let i = 0; i < t.data.length; i++, p += 4) buf.writeFloatLE(t.data[i], p);
    const tmp = `${path}.tmp.${process.pid}`;
    fs.writeFileSync(tmp, buf);
    fs.renameSync(tmp, path);
}

module.exports = {read, write};
