#!/usr/bin/env node
// ONNX Runtime (npm onnxruntime-node) side of bench/run.sh: images/s for the
// inference of an ONNX model exported by `cnnkit export --dynamic-batch`, on
// random data, after warm-up, measured like `cnnkit bench`. Prints one JSON
// object. Usage: node bench/ort_bench.js MODEL.onnx BATCH C H W [THREADS] [SECONDS]
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tests', 'ort', 'node_modules', 'onnxruntime-node'));

async function main(argv) {
    const [model, batch, c, h, w] = [argv[0], ...argv.slice(1, 5).map(Number)];
    const threads = Number(argv[5] || require('os').cpus().length);
    const seconds = Number(argv[6] || 3);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
    });
    const data = new Float32Array(batch * c * h * w).map(() => Math.random());
    const feeds = {input: new ort.Tensor('float32', data, [batch, c, h, w])};
    for (let i = 0; i < 2; i++) await session.run(feeds);
    let n = 0;
    const t0 = process.hrtime.bigint();
    let dt = 0;
    for (;;) {
        await session.run(feeds);
        n++;
        dt = Number(process.hrtime.bigint() - t0) / 1e9;
        if (dt >= seconds && n >= 3) break;
    }
    console.log(JSON.stringify({
        peer: 'onnxruntime ' + ort.env.versions.node,
        images_per_second: batch * n / dt,
        peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    }));
}

main(process.argv.slice(2)).catch((e) => {
    console.error(`ort_bench.js: ${e.message.split('\n')[0]}`);
    process.exit(1);
});
