"""The paper AlexNet (227x227, LRN, 1000 classes, float32) in tinycnn and in PyTorch, step by step.

Whole network: a training step (forward, loss, backward, SGD with momentum 0.9 and weight decay 5e-4 on both
sides) or a forward pass in evaluation mode, in images/s, with the process's peak resident memory. Every
measurement runs in a fresh process (so its peak memory is its own); tinycnn and PyTorch alternate, and each
process times 4 steps after 2 warm-ups.

Per layer: tinycnn's forward and backward time of every layer in one training step.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARM_UPS, STEPS = 2, 4


def _peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tinycnn_sgd_step(model, x, y, cores=None):
    """-> step(): forward, loss, backward and SGD (momentum 0.9, weight decay 5e-4) of a tinycnn model on (x, y),
    inside cores.step() when a tinycnn.cores.CoreShare is given (as the Trainer runs its steps)."""
    import contextlib

    import tinycnn as tc
    model.skip_input_gradient()
    loss_fn = tc.SoftmaxCrossEntropy()
    opt = tc.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        with cores.step() if cores else contextlib.nullcontext():
            loss_fn.forward(model.forward(x, training=True), y)
            model.backward(loss_fn.backward())
            opt.step()
    return step


def torch_sgd_step(model, x, y):
    """-> step(): the same for a PyTorch model, with torch.optim.SGD's momentum and weight decay."""
    import torch
    from torch import nn
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        model.train()
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return step


def tinycnn_step(mode, x, y):
    from tinycnn.models import alexnet
    model = alexnet(variant="paper", rng=0)
    if mode == "forward":
        return lambda: model.forward(x, training=False)
    return tinycnn_sgd_step(model, x, y)


def torch_step(mode, x, y, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)

    def lrn():
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)     # the paper's LRN (PyTorch's alpha is n times)

    model = nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, 1000))
    if mode == "forward":
        model.eval()
        xt = torch.from_numpy(x)

        def forward():
            with torch.no_grad():
                model(xt)
        return forward
    return torch_sgd_step(model, x, y)


def worker(framework, mode, batch, threads):
    """In a child process: prints JSON with the step times (s) and the peak resident memory (MB)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-100, 100, (batch, 3, 227, 227)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    step = tinycnn_step(mode, x, y) if framework == "tinycnn" else torch_step(mode, x, y, threads)
    for _ in range(WARM_UPS):
        step()
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps(dict(times=times, peak_mb=_peak_rss_mb())))


def run_worker(framework, mode, batch, threads):
    done = subprocess.run([sys.executable, "-m", "benchmarks.network", framework, mode, str(batch), str(threads)],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(frameworks, batches, threads, rounds=2):
    """-> rows (mode, batch, then per framework best img/s, median img/s, peak MB; then the ratios)."""
    rows = []
    for batch in batches:
        for mode in ("train step", "forward"):
            times, peak = {f: [] for f in frameworks}, {f: 0.0 for f in frameworks}
            for _ in range(rounds):
                for framework in frameworks:
                    result = run_worker(framework, mode.split()[0], batch, threads)
                    times[framework] += result["times"]
                    peak[framework] = max(peak[framework], result["peak_mb"])
            best = {f: batch / min(times[f]) for f in frameworks}
            median = {f: batch / statistics.median(times[f]) for f in frameworks}
            row = [mode, batch]
            for f in frameworks:
                row += [f"{best[f]:.1f}", f"{median[f]:.1f}", f"{peak[f]:,.0f}"]
            if len(frameworks) == 2:
                ours, theirs = frameworks
                row += [f"{best[ours] / best[theirs]:.2f}", f"{median[ours] / median[theirs]:.2f}",
                        f"{peak[theirs] / peak[ours]:.2f}"]
            rows.append(tuple(row))
    return rows


def per_layer(batch, repeats):
    """-> rows (layer, forward ms, backward ms): medians over `repeats` training steps after one warm-up."""
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


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
