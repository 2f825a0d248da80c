#!/usr/bin/env node
// run.js MODEL.onnx IN.safetensors OUT.safetensors
// Runs an ONNX model with ONNX Runtime (CPU, one intra-op thread) on the
// tensor 'input' of IN and writes the result as the tensor 'output' of OUT.
'use strict';
const ort = require('onnxruntime-node');
const st = require('./st');

async function main(argv) {
    if (argv.length !== 3) {
        console.error('usage: node run.js MODEL.onnx IN.safetensors OUT.safetensors');
        return 2;
    }
    const [model, inPath, outPath] = argv;
    const x = st.read(inPath).input;
    if (!x) throw new Error(`${inPath}: no F32 tensor named 'input'`);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'disabled',
    });
    const res = await session.run({input: new ort.Tensor('float32', x.data, x.shape)});
    const y = res.output;
    st.write(outPath, {output: {shape: y.dims.map(Number), data: y.data}});
    console.log(`onnxruntime ${ort.env.versions.node}: input [${x.shape.join(', ')}] -> ` +
                `output [${y.dims.join(', ')}]`);
    return 0;
}

main(process.argv.slice(2)).then(
    (rc) => process.exit(rc),
    (e) => {
        console.error(`run.js: ${e.message.split('\n')[0]}`);
        process.exit(1);
    });
