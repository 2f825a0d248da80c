#!/usr/bin/python3
"""Runs the benchmark rows, alternating cnnkit, PyTorch and ONNX Runtime, and
prints a table of images/s, ratios, GFLOP/s, % of the measured FMA peak and
peak memory. Called by bench/run.sh, which builds everything first."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Forward multiply-adds per image (torchinfo's count), from `cnnkit summary --json`.
MACS = {"lenet": 423038, "alexnet": 938754826}


# The environment of every measured process: set by main() (see --keep-openblas-coretype).
ENV = dict(os.environ)


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV).stdout
    return json.loads(out.strip().splitlines()[-1])


def cnnkit(args, model, batch, train, threads, seconds, size=None):
    if size:  # the zoo's AlexNet takes 224 only: the same net with an adaptive pool before Flatten
        model = os.path.join(HERE, "alexnet_any_size.txt")
    cmd = [args.cnnkit, "bench", model, "--batch", str(batch), "--threads", str(threads),
           "--seconds", str(seconds), "--json"]
    if train:
        cmd.append("--train")
    if size:
        cmd += ["--input", "1,1,%d,%d" % (size, size)]
    r = run_json(cmd)
    return {"images_per_second": r["images_per_second"], "peak_rss_mb": r["peak_rss_mb"]}


def torch(args, model, batch, train, threads, seconds, size=None):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), model, str(batch),
           "--threads", str(threads), "--seconds", str(seconds)]
    if train:
        cmd.append("--train")
    if size:
        cmd += ["--size", str(size)]
    return run_json(cmd)


def ort(args, model, batch, train, threads, seconds, size=None):
    if train:
        return None
    onnx = os.path.join(os.path.dirname(args.cnnkit), "%s_%d.onnx" % (model, size or 0))
    if not os.path.exists(onnx):
        s = size or (224 if model == "alexnet" else 28)
        subprocess.run([args.cnnkit, "export", model, "--dynamic-batch", "--input",
                        "1,1,%d,%d" % (s, s), "-o", onnx], check=True, capture_output=True)
    s = size or (224 if model == "alexnet" else 28)
    return run_json(["node", os.path.join(HERE, "ort_bench.js"), onnx, str(batch), "1", str(s),
                     str(s), str(threads), str(seconds)])


def macs(model, size):
    if model == "alexnet" and size == 448:
        return None
    return MACS[model]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnnkit", required=True)
    ap.add_argument("--peak", required=True)
    ap.add_argument("--json")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="the main rows only, 2 s each")
    ap.add_argument("--keep-openblas-coretype", action="store_true",
                    help="keep the environment's OPENBLAS_CORETYPE (by default every process "
                    "runs without it: OpenBLAS picks its kernels for this CPU)")
    args = ap.parse_args()
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if not args.keep_openblas_coretype:
        ENV.pop("OPENBLAS_CORETYPE", None)
    threads = os.cpu_count()
    sec = 2.0 if args.quick else 3.0
    peak = float(subprocess.run([args.peak], check=True, capture_output=True, text=True).stdout)
    probe = run_json([args.cnnkit, "bench", "lenet", "--seconds", "0.1", "--json"])
    kernels, blas = probe["kernels"], probe["openblas"]
    rows = [  # (label, model, batch, train, size)
        ("LeNet training step, batch 256", "lenet", 256, True, None),
        ("LeNet inference, batch 256", "lenet", 256, False, None),
        ("LeNet inference, batch 1", "lenet", 1, False, None),
        ("LeNet inference, batch 1024", "lenet", 1024, False, None),
        ("AlexNet training step, batch 64", "alexnet", 64, True, None),
        ("AlexNet inference, batch 64", "alexnet", 64, False, None),
        ("AlexNet inference, batch 1", "alexnet", 1, False, None),
        ("AlexNet inference, batch 128", "alexnet", 128, False, None),
    ]
    results = []
    for label, model, batch, train, size in rows:
        best = {}
        for _ in range(args.rounds):
            for name, fn in (("cnnkit", cnnkit), ("pytorch", torch), ("onnxruntime", ort)):
                r = fn(args, model, batch, train, threads, sec, size)
                if r and (name not in best or r["images_per_second"] > best[name]["images_per_second"]):
                    best[name] = r
        flops = 2.0 * MACS[model] * (3 if train else 1)
        row = {"row": label, "model": model, "batch": batch, "train": train, **{
            k: {"images_per_second": v["images_per_second"], "peak_rss_mb": v["peak_rss_mb"]}
            for k, v in best.items()}}
        c = best["cnnkit"]["images_per_second"]
        row["gflops"] = c * flops / 1e9
        row["peak_percent"] = 100 * row["gflops"] / peak
        results.append(row)
        print_row(row)
    scaling = []
    if not args.quick:
        # Each group's runs alternate round by round, as the peers do above: the
        # host's speed drifts over minutes, and 1 against 2 threads is a ratio.
        groups = [[("lenet", b, False, None, threads) for b in (1, 4, 16, 64, 256, 1024)],
                  [("alexnet", 1, False, 224, threads), ("alexnet", 1, False, 448, threads)],
                  [("alexnet", 64, True, None, 1), ("alexnet", 64, True, None, threads)],
                  [("lenet", 256, True, None, 1), ("lenet", 256, True, None, threads)]]
        for group in groups:
            best = [None] * len(group)
            for _ in range(args.rounds):  # best of the rounds, as for the rows above
                for i, (model, batch, train, size, th) in enumerate(group):
                    t = cnnkit(args, model, batch, train, th, sec, size)
                    if best[i] is None or t["images_per_second"] > best[i]["images_per_second"]:
                        best[i] = t
            for (model, batch, train, size, th), r in zip(group, best):
                scaling.append({"model": model, "batch": batch, "train": train, "size": size or 0,
                                "threads": th, **r})
                print("scaling: %-7s batch %4d %-9s size %3s threads %d: %9.1f images/s" % (
                    model, batch, "training" if train else "inference", size or "-", th,
                    r["images_per_second"]), flush=True)
    meta = {"date": datetime.date.today().isoformat(), "machine": machine(), "threads": threads,
            "fma_peak_gflops": peak, "cnnkit_kernels": kernels, "openblas_core": blas,
            "environment_openblas_coretype": pinned,
            "command": " ".join(["bench/run.sh"] + sys.argv[5:])}
    print("machine: %s; FMA peak %.0f GFLOP/s on %d threads; cnnkit's kernels: %s; OpenBLAS "
          "(cnnkit and PyTorch): %s%s" % (
              meta["machine"], peak, threads, kernels, blas,
              "" if not pinned else " (the environment's OPENBLAS_CORETYPE=%s %s)" % (
                  pinned, "kept" if args.keep_openblas_coretype else "unset")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": results, "scaling": scaling}, f, indent=1)


def print_row(r):
    c = r["cnnkit"]
    line = "%-34s cnnkit %9.1f/s %6.0f MB" % (r["row"], c["images_per_second"], c["peak_rss_mb"])
    for peer in ("pytorch", "onnxruntime"):
        if peer in r:
            p = r[peer]
            line += " | %s %9.1f/s %6.0f MB x%.2f" % (peer, p["images_per_second"], p["peak_rss_mb"],
                                                     c["images_per_second"] / p["images_per_second"])
    line += " | %.1f GFLOP/s, %.0f%% of peak" % (r["gflops"], r["peak_percent"])
    print(line, flush=True)


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return "%s, %d cores" % (line.split(":", 1)[1].strip(), os.cpu_count())
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
