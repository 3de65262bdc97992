"""Speed and memory of tinycnn against OpenBLAS (np.matmul) and, when installed, PyTorch on the CPU.

    python -m benchmarks.bench [--quick]

1. The machine: CPU model, vector extensions, versions, threads, the BLAS kernel (machine.py).
2. GEMM GFLOP/s at every product a paper AlexNet training step runs, at batch 4, 16 and 32 (gemm.py).
3. tinycnn's time per layer in a training step (network.py).
4. The whole paper AlexNet, training step and evaluation forward pass, against PyTorch (network.py).
5. Start-up: import, build and first forward pass in a fresh process with a warm numba cache.
6. The main job's network (mini, 32x32, batch 32) against PyTorch, alone and two copies at once (busy.py).

Speed varies from run to run on these shared machines: every figure is the best (and, for whole steps, the
median) of several, and the sides alternate in separate processes. Compare ratios from one run, never absolute
times from different runs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from . import busy, gemm, machine, network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table(header, rows):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


STARTUP = """
import time
start = time.perf_counter()
import numpy as np
from tinycnn.models import alexnet
model = alexnet(1000, variant="paper", rng=0)
model.forward(np.zeros((1, 3, 227, 227), np.float32))
print(time.perf_counter() - start)
"""


def startup_seconds(repeats):
    """Median wall time of import + build + first forward in fresh processes (the first run warms the cache)."""
    def once():
        done = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, cwd=ROOT, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    once()
    return statistics.median(once() for _ in range(repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, batch 16 only")
    args = parser.parse_args(argv)
    import numba
    threads = numba.get_num_threads()
    rounds, repeats = (1, 3) if args.quick else (2, 5)
    gemm_batches, batches = ((16,), (16,)) if args.quick else ((4, 16, 32), (16, 32))
    try:
        import torch  # noqa: F401
        frameworks = ("tinycnn", "torch")
    except ImportError:
        frameworks = ("tinycnn",)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}\n{machine.describe(threads)}\n")
    if len(frameworks) == 1:
        print("PyTorch is not installed: only tinycnn is measured (pip install torch==2.13.0 for the comparison)\n")

    for batch, (rows, geomean) in gemm.compare(gemm_batches, repeats, rounds).items():
        print(f"GEMM at the paper AlexNet's shapes, batch {batch}, GFLOP/s (best of {repeats} x {rounds} rounds)")
        print(table(("product", "MxKxN", "transposed", "tinycnn", "np.matmul", "ratio"), rows))
        print(f"geometric mean of the ratios: {geomean:.2f}x np.matmul\n")
    print("(a training step computes conv3-5's forward, dX and dW by Winograd's F(2x2, 3x3) instead, 16 smaller\n"
          " products per layer, conv2's by F(2x2, 5x5), 36 smaller products, and conv1's by F(2x2, 3x3) on the\n"
          " image's 4x4 phases; the per-layer and whole-network figures below include that)\n")

    print(f"paper AlexNet per layer in tinycnn, batch 16, ms (median of {repeats})")
    print(table(("layer", "forward", "backward"), network.per_layer(16, repeats)) + "\n")

    header = ["", "batch"]
    for f in frameworks:
        header += [f"{f} best", "median", "peak MB"]
    if len(frameworks) == 2:
        header += ["speed best", "speed median", "memory"]
    print(f"paper AlexNet (227x227, LRN, 1000 classes, float32), images/s and peak resident MB; each side "
          f"{network.STEPS} steps x {rounds} processes, alternating; ratios are tinycnn / PyTorch (memory: "
          f"PyTorch's / tinycnn's, above 1 when tinycnn uses less)")
    print(table(tuple(header), network.compare(frameworks, batches, threads, rounds)))
    print(f"\nstart-up, warm numba cache: import + paper AlexNet built + first forward pass in "
          f"{startup_seconds(3):.1f} s (median of 3 fresh processes)")

    print("\n" + busy.report(frameworks, 4.0 if args.quick else 8.0, rounds))


if __name__ == "__main__":
    sys.exit(main())
