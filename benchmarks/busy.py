"""The main job's network ("mini", 32x32, batch 32) in tinycnn and in PyTorch: alone, and two copies at once.

    python -m benchmarks.busy [--seconds S] [--rounds R]

A training step is forward, loss, backward and SGD (momentum 0.9, weight decay 5e-4) on both sides. Each
measurement is a fresh process that warms up, then times steps for S seconds. "Alone" runs one process;
"two copies" starts two processes of the same framework, lets both warm up, and times them over the same S
seconds, as when two students train at once or the test suite runs beside a training run.

The figure per copy is the median img/s of its steps; "kept" is the two copies' speed over the speed alone
(1.0: the cores were not needed twice; 0.5: an even share of a machine both used fully).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from .network import tinycnn_sgd_step, torch_sgd_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SIZE, CLASSES = 32, 32, 6


def tinycnn_step(x, y):
    from tinycnn.cores import CoreShare
    from tinycnn.models import alexnet
    return tinycnn_sgd_step(alexnet(CLASSES, variant="mini", rng=0), x, y, CoreShare())


def torch_model():
    """PyTorch's copy of tinycnn's mini network (tinycnn/models/alexnet.py, _mini)."""
    from torch import nn

    def lrn():
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)     # the paper's LRN, as tinycnn's

    return nn.Sequential(
        nn.Conv2d(3, 32, 5, 2, 2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(), nn.Conv2d(96, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, CLASSES))


def torch_step(x, y):
    import torch
    torch.set_num_threads(os.cpu_count())                   # as many threads as numba starts
    return torch_sgd_step(torch_model(), x, y)


def worker(framework, seconds, ready, go):
    """In a child process: warm up, say so in `ready`, wait for `go`, time steps for `seconds`; print JSON."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (BATCH, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    step = tinycnn_step(x, y) if framework == "tinycnn" else torch_step(x, y)
    for _ in range(5):
        step()
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps(dict(img_s=BATCH / statistics.median(times), steps=len(times))))


def run_copies(framework, copies, seconds):
    """-> the median img/s of each of `copies` processes of `framework` timed over the same seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        go = os.path.join(tmp, "go")
        readies = [os.path.join(tmp, f"ready{i}") for i in range(copies)]
        children = [subprocess.Popen([sys.executable, "-m", "benchmarks.busy", "--worker", framework, str(seconds),
                                      ready, go], stdout=subprocess.PIPE, text=True, cwd=ROOT)
                    for ready in readies]
        while not all(os.path.exists(r) for r in readies):
            if any(c.poll() not in (None, 0) for c in children):
                raise RuntimeError(f"benchmarks.busy: a {framework} worker failed")
            time.sleep(0.05)
        open(go, "w").close()
        outputs = [c.communicate()[0] for c in children]
    return [json.loads(out.strip().splitlines()[-1])["img_s"] for out in outputs]


def compare(frameworks, seconds, rounds):
    """-> rows (framework, alone img/s, each of two copies img/s, kept): medians over rounds, sides alternating."""
    alone, together = {f: [] for f in frameworks}, {f: [] for f in frameworks}
    for _ in range(rounds):
        for f in frameworks:
            alone[f] += run_copies(f, 1, seconds)
            together[f] += run_copies(f, 2, seconds)
    rows = []
    for f in frameworks:
        one, two = statistics.median(alone[f]), statistics.median(together[f])
        rows.append((f, f"{one:.0f}", f"{two:.0f}", f"{two / one:.2f}"))
    return rows, {f: (statistics.median(alone[f]), statistics.median(together[f])) for f in frameworks}


def report(frameworks, seconds, rounds):
    """Measure (compare) and return the printed report: the table, and the ratios when PyTorch is measured."""
    from .bench import table
    rows, speeds = compare(frameworks, seconds, rounds)
    lines = [f"the main job's network (mini, {SIZE}x{SIZE}, batch {BATCH}), training step, median img/s of each "
             f"process over {seconds:g} s; the median of {rounds} processes alone and of {2 * rounds} run as two "
             f"copies at once, {rounds} times", table(("framework", "alone", "each of two copies", "kept"), rows)]
    if len(frameworks) == 2:
        (ours_one, ours_two), (theirs_one, theirs_two) = speeds["tinycnn"], speeds["torch"]
        lines.append(f"\ntinycnn / PyTorch: alone {ours_one / theirs_one:.2f}x, two copies at once "
                     f"{ours_two / theirs_two:.2f}x")
    return "\n".join(lines)


def main(argv=None):
    from . import machine
    parser = argparse.ArgumentParser(prog="python -m benchmarks.busy", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per measurement (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per case and framework (default 2)")
    args = parser.parse_args(argv)
    import numba
    try:
        import torch  # noqa: F401
        frameworks = ("tinycnn", "torch")
    except ImportError:
        frameworks = ("tinycnn",)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}\n{machine.describe(numba.get_num_threads())}\n")
    print(report(frameworks, args.seconds, args.rounds))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(main())
