"""CoreShare: fewer threads while the cores are shared, all of them again when they are free.

The scheduler's preemptions, the clock and how long a step takes with each thread count are played by the
test, so every decision is checked exactly and nothing depends on how busy the machine running the suite is.
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

    def run(self, share, seconds, preemptions_per_s, work=1.0):
        """One step of `work` that takes `seconds` (or seconds[threads], by the thread count it runs with), during
        which the scheduler preempts us at the given rate. -> the threads it ran with."""
        with share.step(work):
            ran_with = self.threads
            took = seconds[ran_with] if isinstance(seconds, dict) else seconds
            self.now += took
            self.preempted += round(took * preemptions_per_s)
        return ran_with


@pytest.fixture
def machine(monkeypatch):
    return Machine(monkeypatch)


def test_alone_every_thread_is_kept(machine):
    share = cores.CoreShare(most=4, busy=50, window=0.25)
    assert {machine.run(share, 0.02, 10) for _ in range(200)} == {4}     # a stray preemption now and then


SHARED = {3: 0.5, 2: 0.1, 1: 0.15}            # seconds a step: beside another job 2 threads are fastest
ALONE = {2: 0.1, 1: 0.17}                      # alone: each thread counts


def test_a_busy_window_tries_a_thread_fewer_and_keeps_it_when_its_steps_are_faster(machine):
    share = cores.CoreShare(most=3, busy=50, window=0.09, probe_every=100)     # each step a window
    ran = [machine.run(share, SHARED, 200) for _ in range(7)]
    # the first window warms up; the second tries 2 threads: faster, kept; 1 is slower: back to 2
    assert ran == [3, 3, 2, 2, 1, 2, 2]
    assert share.threads == 2


def test_when_busy_only_by_the_count_fewer_threads_are_tried_once_then_not_for_probe_every_windows(machine):
    """A virtual machine's own housekeeping can preempt as often as a second job: the speed decides."""
    share = cores.CoreShare(most=2, busy=50, window=0.09, probe_every=4)
    ran = [machine.run(share, ALONE, 60) for _ in range(10)]
    assert ran == [2, 2, 1, 2, 2, 2, 2, 1, 2, 2]
    assert share.threads == 2


def test_busy_means_more_than_busy_preemptions_a_second(machine):
    share = cores.CoreShare(most=2, busy=48, window=0.1)          # each step a window (0.125 s: exact sums)
    assert [machine.run(share, {2: 0.125, 1: 0.0625}, 48) for _ in range(4)] == [2, 2, 2, 2]   # exactly 48: calm
    assert [machine.run(share, {2: 0.125, 1: 0.0625}, 56) for _ in range(2)] == [2, 1]


def test_one_preempted_step_in_a_calm_window_keeps_the_threads(machine):
    """Two preemptions in a 20 ms step are 100 a second: judged alone it would look busy; the window (of 13
    steps, the second window: the first is never judged) sees it for what it is."""
    share = cores.CoreShare(most=2, busy=50, window=0.25)
    for _ in range(13):
        machine.run(share, 0.02, 0)
    machine.run(share, 0.02, 100)
    ran = [machine.run(share, 0.02, 0) for _ in range(30)]
    assert set(ran) == {2} and share.threads == 2


def test_speed_is_work_a_second_not_steps_a_second(machine):
    """A thread fewer whose steps were quicker only because each did less work (the last batch of an epoch)
    is not kept."""
    share = cores.CoreShare(most=2, busy=50, window=0.08, probe_every=100)
    machine.run(share, 0.1, 0, work=16)
    machine.run(share, 0.1, 200, work=16)                 # busy: the next window tries 1 thread
    assert machine.run(share, 0.09, 0, work=4) == 1       # 44 a second against 160 (but 11 steps against 10)
    assert share.threads == 2


def test_a_thread_more_is_kept_when_not_slower_however_busy_its_window_looked(machine):
    share = cores.CoreShare(most=2, busy=50, window=0.09, probe_every=4)
    assert [machine.run(share, {2: 0.3, 1: 0.1}, 500) for _ in range(3)] == [2, 2, 1]  # settled on 1
    ran = [machine.run(share, ALONE, 60) for _ in range(12)]   # the other job ended; the count stays high
    assert ran == [1, 1, 1, 1, 2, 2, 1, 2, 2, 2, 2, 1] and share.threads == 2


def test_with_fewer_threads_it_tries_one_more_later_and_later_and_keeps_it_once_not_slower(machine):
    share = cores.CoreShare(most=2, busy=50, window=0.09, probe_every=2)
    shared = {2: 0.3, 1: 0.1}
    assert [machine.run(share, shared, 500) for _ in range(3)] == [2, 2, 1]          # settled on 1
    ran = [machine.run(share, shared, 500) for _ in range(16)]
    # a try of 2 threads 2 windows after settling, then 4 after it, then 8: each slower, each undone
    assert ran == [1, 1, 2] + [1] * 4 + [2] + [1] * 8
    ran = [machine.run(share, {2: 0.1, 1: 0.15}, 0) for _ in range(20)]             # the other job has ended
    assert share.threads == 2 and ran[-5:] == [2] * 5


def test_tries_of_a_thread_more_wait_at_most_longest_gap_times_probe_every(machine):
    share = cores.CoreShare(most=2, busy=50, window=0.09, probe_every=2)
    shared = {2: 0.3, 1: 0.1}
    ran = [machine.run(share, shared, 500) for _ in range(300)]
    tries = [i for i, threads in enumerate(ran) if threads == 2 and i > 1]
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert gaps[:5] == [5, 9, 17, 33, 33] and set(gaps[3:]) == {2 * cores.CoreShare.longest_gap + 1}


def test_settling_on_a_thread_fewer_starts_the_waits_for_a_try_of_one_more_afresh(machine):
    share = cores.CoreShare(most=3, busy=50, window=0.09, probe_every=2)
    for _ in range(12):                                   # 2 threads best: tries of 3 failed, the wait now 8
        machine.run(share, {3: 0.5, 2: 0.1, 1: 0.15}, 500)
    assert share.threads == 2 and share.probe_gap == 8
    ran = [machine.run(share, {3: 0.5, 2: 0.3, 1: 0.1}, 500) for _ in range(8)]   # now 1 is best
    assert ran == [2, 1, 1, 1, 2, 1, 1, 1]               # settled on 1, a try of 2 after 2 windows, not 8


def test_a_thread_fewer_must_be_margin_faster_and_a_thread_more_no_more_than_margin_slower(machine, monkeypatch):
    """margin 1/4 (exact in binary), steps of 1/8 s, each a window: the settled count runs 8 work a second."""
    monkeypatch.setattr(cores.CoreShare, "margin", 0.25)
    for trial_work, kept in ((1.25, False), (1.375, True)):       # exactly 1.25x is not faster: 1.375x is
        share = cores.CoreShare(most=2, busy=50, window=0.1, probe_every=2)
        machine.run(share, 0.125, 0)
        machine.run(share, 0.125, 500)                             # busy: a try of 1 thread
        assert machine.run(share, 0.125, 0, work=trial_work) == 1
        assert share.threads == (1 if kept else 2)
    for probe_work, kept in ((0.75, True), (0.625, False)):       # exactly 0.75x is no slower than allowed
        share = cores.CoreShare(most=2, busy=50, window=0.1, probe_every=2)
        machine.run(share, 0.125, 0)
        machine.run(share, 0.125, 500)
        machine.run(share, 0.125, 0, work=2)                       # a thread fewer, twice as fast: kept
        assert share.threads == 1
        assert [machine.run(share, 0.125, 0, work=2) for _ in range(2)] == [1, 1]
        assert machine.run(share, 0.125, 0, work=2 * probe_work) == 2     # the try of 2 threads
        assert share.threads == (2 if kept else 1)


def test_speed_is_work_over_seconds_with_nothing_added(machine):
    """A window of one 0.2 s step of work 2.2 runs 11 a second against 10: a thread fewer kept (5% margin)."""
    share = cores.CoreShare(most=2, busy=50, window=0.09)
    machine.run(share, 0.1, 0)
    machine.run(share, 0.1, 500)
    machine.run(share, 0.2, 0, work=2.2)
    assert share.threads == 1


def test_busy_may_be_zero_preemptions_a_second(machine):
    share = cores.CoreShare(most=2, busy=0, window=0.04)
    machine.run(share, 0.1, 0)
    machine.run(share, 0.1, 10)                                    # any preemption is busy: a try of 1
    assert machine.run(share, {2: 0.1, 1: 0.05}, 0) == 1 and share.threads == 1


def test_most_defaults_to_numbas_thread_count(machine):
    assert cores.CoreShare().most == 3


def test_each_step_puts_the_thread_count_back_even_when_it_fails(machine):
    """What runs between steps (an evaluation pass, a second Trainer's CoreShare) keeps the count it had."""
    share = cores.CoreShare(most=2, busy=50, window=0.09)
    for _ in range(3):
        machine.run(share, {2: 0.3, 1: 0.1}, 500)
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
