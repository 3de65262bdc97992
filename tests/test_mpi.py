"""Training on several processes with MPI (issue 17), for real: mpiexec -n 2 and -n 3 in subprocesses, each with a
timeout so that a hang fails the test instead of blocking the suite. The ranks run with one numba thread each.

Data parallel: N ranks train the weights one process trains (float64, to 1e-11), every rank holds the same ones,
a run resumes at another N, a signal to mpiexec stops every rank with one checkpoint, and a rank that fails
stops the others with one line. Model parallel (the paper's two towers on two ranks): forward and backward equal
the single-process groups=2 model.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)           # the venv's mpiexec: the MPI that its mpi4py was built for
MPIEXEC = shutil.which("mpiexec", path=BIN + os.pathsep + os.environ.get("PATH", ""))
TIMEOUT = 240


def environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
    env.update(NUMBA_NUM_THREADS="1", PATH=BIN + os.pathsep + env.get("PATH", ""))
    return env


def start(n, *args):
    """`mpiexec -n N python ARGS` (or plain `python ARGS` for n=None) in its own process group, pipes open."""
    assert MPIEXEC, "mpiexec not found: pip install -e '.[test]' installs mpi4py and MPICH's mpiexec"
    launcher = [] if n is None else [MPIEXEC, "-n", str(n)]
    return subprocess.Popen(launcher + [sys.executable, "-u", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=environment(), start_new_session=True)


def finish(process, timeout=TIMEOUT):
    """-> (exit code, stdout, stderr); a run still going after `timeout` s is killed with every rank, and fails."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"hung: still running after {timeout} s\n{out}\n{err}")
    return process.returncode, out, err


def run(n, *args, timeout=TIMEOUT):
    return finish(start(n, *args), timeout)


def weights(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def assert_same_training(ranks, alone, rtol=1e-11):
    """Every parameter and momentum array within rtol of its largest value, and the same validation accuracy."""
    assert ranks["val_top1"].tolist() == alone["val_top1"].tolist()
    for key, expected in alone.items():
        if key.startswith(("param/", "velocity/", "buffer/")):
            error = np.abs(ranks[key] - expected).max() / np.abs(expected).max()
            assert error < rtol, f"{key}: relative difference {error:.2e}"


# -- data parallel ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The float64 mini AlexNet trained by one process: 2 epochs of batches of 10, 10 and 2 images."""
    out = tmp_path_factory.mktemp("one")
    code, _, err = run(None, os.path.join(HERE, "mpi_train.py"), out)
    assert code == 0, err
    return weights(out / "rank0.npz")


@pytest.mark.parametrize("n", [2, 3])
def test_n_ranks_train_the_weights_one_process_trains(tmp_path, one_process, n):
    """Same seed, same global batch: the same crops, flips, colour noise and dropout masks, gradients summed
    over the ranks; 2 epochs of 3 steps, the last batch of 2 images (over 3 ranks, one rank holds none)."""
    code, _, err = run(n, os.path.join(HERE, "mpi_train.py"), tmp_path)
    assert code == 0, err
    ranks = [weights(tmp_path / f"rank{r}.npz") for r in range(n)]
    for other in ranks[1:]:                       # every rank applied the same update: the same bits
        for key, value in ranks[0].items():
            np.testing.assert_array_equal(other[key], value, err_msg=key)
    assert_same_training(ranks[0], one_process)


def test_batchnorm_normalises_each_ranks_rows_with_their_own_statistics(tmp_path):
    """Per-rank BatchNorm: the summed gradient is that of each rank's rows normalised on their own (not the whole
    batch's), and the running statistics are the ranks' average, weighted by their share of the batch."""
    sys.path.insert(0, HERE)
    from mpi_batchnorm import batch, network, step
    code, _, err = run(2, os.path.join(HERE, "mpi_batchnorm.py"), tmp_path / "bn.npz")
    assert code == 0, err
    ranks = weights(tmp_path / "bn.npz")
    x, labels = batch()
    halves = []
    for rows in (slice(0, 4), slice(4, 8)):       # each half alone, as its rank sees it
        model = network()
        step(model, x[rows], labels[rows], 0.5)
        halves.append(model)
    whole = network()
    step(whole, x, labels, 1.0)
    for (name, p), q, w in zip(halves[0].named_parameters(), halves[1].parameters(), whole.parameters()):
        np.testing.assert_allclose(ranks[f"grad/{name}"], p.grad + q.grad, rtol=1e-12, atol=1e-14, err_msg=name)
        if name == "conv.weight":                # the whole batch's statistics would give another gradient
            assert np.abs(ranks[f"grad/{name}"] - w.grad).max() > 1e-3
    for (name, a), (_, b) in zip(halves[0].named_buffers(), halves[1].named_buffers()):
        np.testing.assert_allclose(ranks[f"buffer/{name}"], (a + b) / 2, rtol=1e-12, err_msg=name)
