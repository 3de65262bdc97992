"""tinycnn's GEMM against np.matmul (OpenBLAS) at every product a paper AlexNet training step runs.

Each side runs in its own process, the two alternating, twice each: OpenBLAS's threads keep spinning for a
while after a call and take the cores from whatever runs next, so the two are never timed back to back in one
process. The np.matmul process runs without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on some machines, they
slow a current numpy); nothing else ever changes them.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alexnet_gemm_shapes(batch):
    """(name, M, K, N, transposes) for every product a training step of the paper AlexNet runs."""
    from tinycnn.models import alexnet
    model = alexnet(variant="paper", rng=0)
    shapes, shape = [], (3, 227, 227)
    for name, layer, _ in model.nodes:
        out = layer.output_shape(shape)
        if type(layer).__name__ == "Conv2d":
            F, G = layer.out_channels, layer.groups
            rows = layer.in_channels // G * layer.kernel_size[0] * layer.kernel_size[1]
            cols = batch * out[1] * out[2]
            shapes += [(f"{name} forward", F // G, rows, cols, ""), (f"{name} dW", F // G, cols, rows, "B^T"),
                       (f"{name} dX", rows, F // G, cols, "A^T")]
        elif type(layer).__name__ == "Dense":
            shapes += [(f"{name} forward", batch, layer.in_features, layer.out_features, "B^T"),
                       (f"{name} dW", layer.out_features, batch, layer.in_features, "A^T"),
                       (f"{name} dX", batch, layer.out_features, layer.in_features, "")]
        shape = out
    return [s for s in shapes if not s[0].startswith("conv1 dX")]       # conv1 needs no input gradient


def operands(M, K, N, transposed, rng):
    a = rng.standard_normal((K, M) if "A^T" in transposed else (M, K), np.float32)
    b = rng.standard_normal((N, K) if "B^T" in transposed else (K, N), np.float32)
    return (a.T if "A^T" in transposed else a), (b.T if "B^T" in transposed else b)


def worker(side, batches, repeats):
    """In a child process: the best of `repeats` times of every product -> JSON {"batch name": seconds}."""
    from tinycnn.kernels import gemm
    multiply = gemm if side == "tinycnn" else np.matmul
    rng, best = np.random.default_rng(0), {}
    for batch in batches:
        for name, M, K, N, transposed in alexnet_gemm_shapes(batch):
            a, b = operands(M, K, N, transposed, rng)
            multiply(a, b)                                # compile, warm the caches
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                multiply(a, b)
                times.append(time.perf_counter() - start)
            best[f"{batch} {name}"] = min(times)
    print(json.dumps(best))


def run_side(side, batches, repeats):
    env = dict(os.environ)
    if side == "np.matmul":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    done = subprocess.run([sys.executable, "-m", "benchmarks.gemm", side, ",".join(map(str, batches)),
                           str(repeats)], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(batches, repeats, rounds=2):
    """-> {batch: (rows, geometric mean of tinycnn / np.matmul)}, the best time of each side over the rounds."""
    best = {"tinycnn": {}, "np.matmul": {}}
    for _ in range(rounds):
        for side in best:
            for key, seconds in run_side(side, batches, repeats).items():
                best[side][key] = min(seconds, best[side].get(key, seconds))
            time.sleep(1)
    report = {}
    for batch in batches:
        rows, ratios = [], []
        for name, M, K, N, transposed in alexnet_gemm_shapes(batch):
            flops = 2.0 * M * K * N
            ours, blas = (flops / best[side][f"{batch} {name}"] / 1e9 for side in ("tinycnn", "np.matmul"))
            ratios.append(ours / blas)
            rows.append((name, f"{M}x{K}x{N}", transposed or "-", f"{ours:.1f}", f"{blas:.1f}", f"{ours / blas:.2f}"))
        report[batch] = rows, float(np.exp(np.mean(np.log(ratios))))
    return report


if __name__ == "__main__":
    worker(sys.argv[1], [int(b) for b in sys.argv[2].split(",")], int(sys.argv[3]))
