"""CoreShare: fewer threads while the cores are shared, all of them again when they are free.

The scheduler's preemptions and the clock are played by the test, so every decision is checked exactly and
nothing depends on how busy the machine running the suite is.
"""
import pytest

from tinycnn import cores


class Machine:
    """A stand-in for the clock, the preemption count and numba's thread setting (8 threads allowed, 3 set)."""

    def __init__(self, monkeypatch):
        self.now, self.preempted, self.threads = 0.0, 0, 3
        monkeypatch.setattr(cores.time, "perf_counter", lambda: self.now)
        monkeypatch.setattr(cores, "preemptions", lambda: self.preempted)
        monkeypatch.setattr(cores.numba, "get_num_threads", lambda: self.threads)
        monkeypatch.setattr(cores.numba, "set_num_threads", lambda n: setattr(self, "threads", n))
        monkeypatch.setattr(cores.numba.config, "NUMBA_NUM_THREADS", 8)

    def run(self, share, seconds, preemptions_per_s):
        """One step of `seconds` during which the scheduler preempts us at the given rate. -> threads it ran with."""
        with share.step():
            ran_with = self.threads
            self.now += seconds
            self.preempted += round(seconds * preemptions_per_s)
        return ran_with


@pytest.fixture
def machine(monkeypatch):
    return Machine(monkeypatch)


def test_alone_every_thread_is_kept(machine):
    share = cores.CoreShare(most=4, busy=50, window=0.25)
    assert {machine.run(share, 0.02, 10) for _ in range(200)} == {4}     # a stray preemption now and then


def test_a_busy_window_drops_one_thread_and_the_next_drops_another(machine):
    share = cores.CoreShare(most=3, busy=50, window=0.24, probe_every=100)
    ran = [machine.run(share, 0.05, 200) for _ in range(15)]
    assert ran == [3] * 5 + [2] * 5 + [1] * 5                             # judged every 5 steps (0.25 s)
    assert share.threads == 1


def test_busy_means_more_than_busy_preemptions_a_second(machine):
    share = cores.CoreShare(most=2, busy=50, window=0.09)        # each 0.1 s step a window
    assert [machine.run(share, 0.1, 50) for _ in range(3)] == [2, 2, 2]   # exactly 50 a second: calm
    assert [machine.run(share, 0.1, 60) for _ in range(2)] == [2, 1]


def test_one_preempted_step_in_a_calm_window_keeps_the_threads(machine):
    """A single preemption in a 20 ms step is 50 a second: judged alone it would look busy; the window sees
    it for what it is."""
    share = cores.CoreShare(most=2, busy=50, window=0.25)
    machine.run(share, 0.02, 100)
    ran = [machine.run(share, 0.02, 0) for _ in range(30)]
    assert set(ran) == {2} and share.threads == 2


def test_with_fewer_threads_it_tries_one_more_now_and_then_and_keeps_it_when_calm(machine):
    share = cores.CoreShare(most=2, busy=50, window=0.09, probe_every=4)   # each step a window
    for _ in range(2):
        machine.run(share, 0.1, 500)                                      # busy: down to 1
    assert share.threads == 1
    ran = [machine.run(share, 0.1, 500) for _ in range(8)]                # still busy: each try goes back
    assert ran == [1, 1, 2, 1, 1, 1, 2, 1] and share.threads == 1        # a try after every 4th window
    ran = [machine.run(share, 0.1, 0) for _ in range(8)]                  # the other job has ended
    assert share.threads == 2 and ran[-1] == 2


def test_most_defaults_to_numbas_thread_count(machine):
    assert cores.CoreShare().most == 3


def test_each_step_puts_the_thread_count_back_even_when_it_fails(machine):
    """What runs between steps (an evaluation pass, a second Trainer's CoreShare) keeps the count it had."""
    share = cores.CoreShare(most=2, busy=50, window=0.09)
    machine.run(share, 0.1, 500)
    assert share.threads == 1 and machine.threads == 3
    with pytest.raises(KeyError):
        with share.step():
            assert machine.threads == 1
            raise KeyError("the step failed")
    assert machine.threads == 3


def test_preemptions_between_steps_do_not_count(machine):
    share = cores.CoreShare(most=2, busy=50, window=0.25)
    for _ in range(20):
        machine.run(share, 0.02, 0)
        machine.now += 1.0                                # an evaluation pass between steps, preempted 100 times
        machine.preempted += 100
    assert share.threads == 2


@pytest.mark.parametrize("kwargs", [dict(most=0), dict(most=9), dict(window=0), dict(busy=-1), dict(probe_every=0)])
def test_bad_settings_are_refused_naming_core_share(machine, kwargs):
    with pytest.raises(ValueError, match="CoreShare: "):
        cores.CoreShare(**kwargs)


def test_one_thread_runs_the_block_with_one_and_puts_the_count_back(machine):
    with pytest.raises(KeyError):
        with cores.one_thread():
            assert machine.threads == 1
            raise KeyError("the block failed")
    assert machine.threads == 3


def test_a_gradient_check_runs_on_one_thread(machine, monkeypatch):
    """Its inputs are tiny: a second thread gains nothing, and on a busy machine it waits at every parallel loop.
    Every forward pass of the check runs with one thread; afterwards the count is as it was."""
    import numpy as np

    import tinycnn as tc
    layer = tc.Dense(3, 2, dtype=np.float64, rng=np.random.default_rng(0))
    seen, forward = [], layer.forward
    monkeypatch.setattr(layer, "forward", lambda *args, **kw: (seen.append(machine.threads), forward(*args, **kw))[1])
    tc.gradcheck(layer, np.random.default_rng(1).standard_normal((2, 3)))
    assert len(seen) > 10 and set(seen) == {1} and machine.threads == 3
