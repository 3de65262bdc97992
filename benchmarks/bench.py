"""Speed and memory of tinycnn against OpenBLAS (np.matmul) and, when installed, PyTorch on the CPU.

    python alexnet.py bench [--quick]        or        python -m benchmarks.bench [--quick]

Everything is measured side by side in one run, and reported as medians of several repeats and as ratios:
these machines are shared and noisy, so absolute times from different runs do not compare.

1. GEMM GFLOP/s at the shapes AlexNet's layers multiply (forward, and both backward products), numba kernel
   against np.matmul, with the geometric mean of the ratios.
2. Per-layer forward and backward times of the paper AlexNet (227x227, LRN, 1000 classes).
3. The paper AlexNet's SGD training step and forward pass in images/s at batch 16 and 32, tinycnn against
   PyTorch with the same threads, each in its own process so that its peak resident memory can be read.
4. Start-up: a fresh process that imports tinycnn and runs the paper AlexNet's first forward pass (batch 1),
   with the numba cache warm (the run before it fills the cache).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = os.cpu_count() or 2


def median_time(fn, repeats):
    fn()                                                  # warm-up: compilation, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- 1. GEMM --------------------------------------------------------------------------------------------------

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


def bench_gemm(batch, repeats):
    from tinycnn.kernels import gemm
    rng = np.random.default_rng(0)
    rows, ratios = [], []
    for name, M, K, N, transposed in alexnet_gemm_shapes(batch):
        a = rng.standard_normal((K, M) if "A^T" in transposed else (M, K), np.float32)
        b = rng.standard_normal((N, K) if "B^T" in transposed else (K, N), np.float32)
        a = a.T if "A^T" in transposed else a
        b = b.T if "B^T" in transposed else b
        flops = 2.0 * M * K * N
        ours = flops / median_time(lambda: gemm(a, b), repeats) / 1e9
        blas = flops / median_time(lambda: np.matmul(a, b), repeats) / 1e9
        ratios.append(ours / blas)
        rows.append((name, f"{M}x{K}x{N}", transposed or "-", f"{ours:.1f}", f"{blas:.1f}", f"{ours / blas:.2f}"))
    geomean = float(np.exp(np.mean(np.log(ratios))))
    return rows, geomean


# -- 2. per layer ---------------------------------------------------------------------------------------------

def bench_layers(batch, repeats):
    from tinycnn.models import alexnet
    model = alexnet(variant="paper", rng=0)
    model.skip_input_gradient()
    x = np.random.default_rng(0).uniform(-100, 100, (batch, 3, 227, 227)).astype(np.float32)
    times = {name: [[], []] for name, _, _ in model.nodes}
    for _ in range(repeats + 1):
        h = x
        for name, layer, _ in model.nodes:
            start = time.perf_counter()
            h = layer.forward(h, training=True)
            times[name][0].append(time.perf_counter() - start)
        dy = np.ones_like(h) / h.size
        for name, layer, _ in reversed(model.nodes):
            start = time.perf_counter()
            dy = layer.backward(dy)
            times[name][1].append(time.perf_counter() - start)
    return [(name, f"{statistics.median(f[1:]) * 1e3:.1f}", f"{statistics.median(b[1:]) * 1e3:.1f}")
            for name, (f, b) in times.items()]


# -- 3. whole network, one process per measurement -------------------------------------------------------------

def _peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(framework, mode, batch, repeats):
    """Runs in a child process; prints JSON with images/s and peak resident memory."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-100, 100, (batch, 3, 227, 227)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    if framework == "tinycnn":
        sys.path.insert(0, ROOT)
        import tinycnn as tc
        from tinycnn.models import alexnet
        model = alexnet(variant="paper", rng=0)
        model.skip_input_gradient()
        loss_fn, opt = tc.SoftmaxCrossEntropy(), tc.SGD(model.parameters(), lr=0.01)

        def step():
            if mode == "forward":
                model.forward(x, training=False)
                return
            loss_fn.forward(model.forward(x, training=True), y)
            model.backward(loss_fn.backward())
            opt.step()
    else:
        import torch
        from torch import nn
        torch.set_num_threads(THREADS)

        def lrn():
            return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)    # the paper's LRN (alpha * n)

        model = nn.Sequential(
            nn.Conv2d(3, 96, 11, 4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
            nn.Dropout(0.5), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, 1000))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            if mode == "forward":
                model.eval()
                with torch.no_grad():
                    model(xt)
                return
            model.train()
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
    seconds = median_time(step, repeats)
    print(json.dumps(dict(images_per_s=batch / seconds, peak_mb=_peak_rss_mb())))


def run_worker(framework, mode, batch, repeats):
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--worker", framework, mode, str(batch),
                           str(repeats)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def table(header, rows):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and batch 16 only")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        framework, mode, batch, repeats = args.worker
        return worker(framework, mode, int(batch), int(repeats))
    repeats = 2 if args.quick else 3
    batches = (16,) if args.quick else (16, 32)
    try:
        import torch  # noqa: F401
        frameworks = ("tinycnn", "torch")
    except ImportError:
        frameworks = ("tinycnn",)
        print("PyTorch is not installed: only tinycnn is measured (pip install torch for the comparison)\n")
    print(f"{time.strftime('%Y-%m-%d')}, {THREADS} threads, numpy {np.__version__}\n")

    rows, geomean = bench_gemm(16, repeats)
    print("GEMM at the paper AlexNet's shapes (batch 16), GFLOP/s")
    print(table(("product", "MxKxN", "transposed", "tinycnn", "np.matmul", "ratio"), rows))
    print(f"geometric mean of the ratios: {geomean:.2f}x OpenBLAS")
    print("(in a training step, the 3x3 conv3-5 compute forward and dX by Winograd's F(2x2, 3x3) instead: 16\n"
          " smaller products per layer; the per-layer and whole-network figures below include that)\n")

    print("paper AlexNet per layer, batch 16, ms (median)")
    print(table(("layer", "forward", "backward"), bench_layers(16, repeats)) + "\n")

    rows = []
    for batch in batches:
        for mode in ("train step", "forward"):
            results = {f: run_worker(f, mode.split()[0], batch, repeats) for f in frameworks}
            ours, torch_ = results["tinycnn"], results.get("torch")
            rows.append((mode, batch, f"{ours['images_per_s']:.1f}", f"{ours['peak_mb']:.0f}",
                         f"{torch_['images_per_s']:.1f}" if torch_ else "-", f"{torch_['peak_mb']:.0f}" if torch_
                         else "-", f"{ours['images_per_s'] / torch_['images_per_s']:.2f}" if torch_ else "-"))
    print("paper AlexNet (227x227, LRN, 1000 classes, float32), images/s and peak resident MB")
    print(table(("", "batch", "tinycnn img/s", "MB", "PyTorch img/s", "MB", "tinycnn/PyTorch"), rows))
    print(f"\nstart-up, warm numba cache: import + paper AlexNet built + first forward pass in "
          f"{startup_seconds(repeats):.1f} s (median of {repeats} fresh processes)")


if __name__ == "__main__":
    sys.exit(main())
