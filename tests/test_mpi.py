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
TIMEOUT = 120


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


# -- the command line on several ranks ---------------------------------------------------------------------------

ALEXNET = os.path.join(ROOT, "alexnet.py")
SMALL = ["--train-images", "160", "--val-images", "24", "--batch-size", "16"]


def train(n, out, *args):
    code, stdout, stderr = run(n, ALEXNET, "train", *SMALL, "--out", out, *args)
    assert code == 0, stderr
    return stdout


def test_a_run_started_on_2_ranks_resumes_on_3_and_ends_where_one_process_ends(tmp_path, one_process):
    """Everything a rank holds is the same on every rank, so a checkpoint does not depend on N (float64)."""
    code, _, err = run(2, os.path.join(HERE, "mpi_train.py"), tmp_path, "--epochs", "1")
    assert code == 0, err
    code, _, err = run(3, os.path.join(HERE, "mpi_train.py"), tmp_path, "--epochs", "2", "--resume")
    assert code == 0, err
    assert_same_training(weights(tmp_path / "rank0.npz"), one_process)


def test_the_command_line_says_how_the_ranks_share_the_work_and_resumes_at_another_n(tmp_path):
    stdout = train(2, tmp_path, "--epochs", "1")
    assert stdout.startswith("training mini AlexNet") and "2 ranks share each batch of 16: 8 + 8 images" in stdout
    assert re.search(r"epoch 1/1 .* img/s  2 ranks, communication \d+% of the time \(1\.52 MB per step\)", stdout)
    stdout = train(3, tmp_path, "--epochs", "2", "--resume")
    assert stdout.startswith(f"resumed {tmp_path}/last.npz after epoch 1\n"), stdout
    assert "3 ranks share each batch of 16: 6 + 5 + 5 images" in stdout and "epoch 2/2" in stdout


def without_launcher_lines(stderr):
    """stderr less MPICH's own lines: mpiexec's note on forwarding Ctrl-C, and MPI_Abort's one line."""
    return [line for line in stderr.splitlines() if not line.startswith(("[mpiexec@", "Abort("))]


@pytest.mark.parametrize("signum, to", [(signal.SIGINT, "mpiexec"), (signal.SIGTERM, "mpiexec"),
                                        (signal.SIGTERM, "one rank")])
def test_a_signal_stops_every_rank_after_the_same_step_with_one_checkpoint(tmp_path, signum, to):
    """mpiexec passes a signal on to every rank; a signal may also reach one rank alone (a kill of its pid). The
    ranks agree after each step whether any got one, finish the step, rank 0 writes last.npz, and the run resumes
    to the very weights of an uninterrupted run."""
    process = start(2, ALEXNET, "train", *SMALL, "--epochs", "3", "--out", tmp_path / "cut")
    for line in process.stdout:
        if line.startswith("epoch 1/3"):
            break
    time.sleep(0.3)
    if to == "mpiexec":
        process.send_signal(signum)
    else:
        os.kill(ranks_of(process)[-1], signum)
    code, _, stderr = finish(process)
    assert code == 128 + signum, stderr
    told = without_launcher_lines(stderr)
    assert len(told) == 1 and re.fullmatch(
        rf"alexnet.py train: interrupted by {signal.Signals(signum).name} (at epoch 2, step \d+|after epoch \d); "
        rf"saved {tmp_path}/cut/last.npz, continue with --resume", told[0]), stderr
    stdout = train(2, tmp_path / "cut", "--epochs", "3", "--resume")
    assert stdout.startswith(f"resumed {tmp_path}/cut/last.npz "), stdout
    train(2, tmp_path / "straight", "--epochs", "3")
    a, b = weights(tmp_path / "cut" / "last.npz"), weights(tmp_path / "straight" / "last.npz")
    for key in b:                                 # the same ranks add the same numbers in the same order
        if key.startswith(("param/", "velocity/")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_rank_that_fails_stops_the_others_with_one_line(tmp_path):
    code, _, stderr = run(2, os.path.join(HERE, "mpi_fail.py"), "train", *SMALL, "--out", tmp_path, timeout=120)
    assert code != 0
    assert without_launcher_lines(stderr) == [
        "alexnet.py train: rank 1 of 2 failed: MemoryError: cannot allocate 151 MB (planted by tests/mpi_fail.py); "
        "stopping every rank"], stderr


def ranks_of(process):
    """The pids of the processes mpiexec started (its descendants running python), from /proc."""
    children = {}
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(stat))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [process.pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"alexnet.py" in f.read():
                    found.append(child)
    return found


def test_a_rank_killed_outright_ends_the_run_instead_of_hanging(tmp_path):
    """SIGKILL (the kernel's out-of-memory killer) leaves a rank no chance to say anything: mpiexec notices its
    death and ends the others, within the timeout."""
    process = start(2, ALEXNET, "train", *SMALL, "--epochs", "3", "--out", tmp_path)
    for line in process.stdout:
        if line.startswith("epoch 1/3"):
            break
    pids = ranks_of(process)
    assert len(pids) == 2, pids
    os.kill(pids[-1], signal.SIGKILL)
    code, stdout, stderr = finish(process, timeout=60)
    assert code == 9 and "Killed (signal 9)" in stdout + stderr, stdout + stderr      # mpiexec's own report
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}") and
                open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "/no/such/folder"], "alexnet.py train: /no/such/folder: no such file or folder"),
    (["train", "--batch-size", "0"], "alexnet.py train: argument --batch-size: expected a whole number > 0, got 0"),
    (["summary"], "alexnet.py summary: runs on one process; mpiexec -n N is for train and towers (got 2 ranks)"),
])
def test_a_mistake_every_rank_finds_is_told_once(tmp_path, args, message):
    code, _, stderr = run(2, ALEXNET, *args, "--out" if args[0] == "train" else "--classes", tmp_path if
                          args[0] == "train" else 6, timeout=120)
    assert code == 2 and len(stderr.splitlines()) == 1 and stderr.startswith(message), stderr


# -- model parallel: the paper's two GPUs as two ranks -----------------------------------------------------------

@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    """What tests/mpi_towers.py saved: the two towers' logits, loss, gradients and bytes sent."""
    out = tmp_path_factory.mktemp("towers") / "towers.npz"
    code, _, err = run(2, os.path.join(HERE, "mpi_towers.py"), out)
    assert code == 0, err
    return weights(out)


def test_two_towers_on_two_ranks_compute_the_groups_2_models_forward_and_backward(towers):
    """float64, 99x99 images: the same logits, loss and gradients of all 16 parameters (the towers' halves put
    together) as one process running the paper's groups=2 model, dropout masks included."""
    sys.path.insert(0, HERE)
    import tinycnn as tc
    from mpi_towers import batch, paper_model
    model = paper_model()
    model.skip_input_gradient()
    x, labels = batch()
    loss = tc.SoftmaxCrossEntropy()
    logits = model.forward(x, training=True)
    np.testing.assert_allclose(towers["logits"], logits, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(towers["loss"], loss.forward(logits, labels), rtol=1e-12)
    model.backward(loss.backward())
    for name, p in model.named_parameters():
        assert np.abs(p.grad).max() > 0, name
        error = np.abs(towers[f"grad/{name}"] - p.grad).max() / np.abs(p.grad).max()
        assert error < 1e-10, f"{name}: relative difference {error:.2e}"


def test_the_towers_send_what_the_traffic_count_says_at_conv3_and_the_dense_layers(towers):
    """Section 3.2: the GPUs talk only at conv3's input and the dense layers' (plus the logits here); rank 0 sent
    its half of each, forward, and the other rank's half of each gradient back, as traffic.tower_exchanges counts."""
    sys.path.insert(0, HERE)
    from mpi_towers import paper_model
    from tinycnn.distributed.traffic import tower_exchanges
    sent = {key[5:]: int(v) for key, v in towers.items() if key.startswith("sent/")}
    counted = tower_exchanges(paper_model(), (3, 99, 99))
    assert [e["layer"] for e in counted] == ["conv3", "fc6", "fc7", "fc8", "logits"]
    assert sent == {("logits" if e["layer"] == "logits" else f"to_{e['layer']}"):
                    3 * e["sent"] * (1 if e["layer"] == "logits" else 2) for e in counted}


def test_the_towers_command_shows_each_rank_its_layers_and_what_it_sends():
    code, stdout, stderr = run(2, ALEXNET, "towers", "--input-size", "67", "--classes", "10", "--batch-size", "2")
    assert code == 0, stderr
    for rank in ("rank 0 (tower a)", "rank 1 (tower b)"):
        assert f"{rank}: 10,104,517 parameters" in stdout                 # half of the 20.2 M parameters each
    exchanged = re.findall(r"^(to_\w+|logits) +Allgather .* ([\d.]+)$", stdout, re.M)
    assert [name for name, _ in exchanged] == ["to_conv3", "to_fc6", "to_fc7", "to_fc8", "logits"] * 2
    worst = float(re.search(r"the same gradients, to ([\d.e+-]+) of", stdout)[1])
    assert worst < 1e-4, stdout
