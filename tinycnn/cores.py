"""Sharing the cores: fewer threads while other programs keep them busy, all of them again when they are free.

numba's threads meet at the end of every parallel loop (a layer runs several). Alone on the machine that costs
microseconds. When another program wants the same cores, the scheduler sets one of our threads aside for a
time slice of milliseconds, and every other thread waits for it at the next meeting point, spinning and so
taking cores from the other program too. Two 2-thread jobs on 2 cores then slow each other down ten times and
more, where two 1-thread jobs would each keep a core.

The sign is in the operating system's count of involuntary context switches (getrusage): how often the
scheduler took a core from one of our threads because something else was waiting for it. Alone it stays near
zero (a stray one now and then); beside a second job it runs to hundreds a second. So, judged over windows of
at least `window` seconds of steps:

    more than `busy` preemptions a second                -> the next window runs with one thread fewer
    every `probe_every` windows with fewer threads        -> one window tries a thread more, keeps it if calm

This costs nothing alone (the count stays low and every thread is kept), and beside a second job each job
ends up with the cores it can have.
"""
import resource
import time
from contextlib import contextmanager

import numba


def preemptions():
    """How many times so far the scheduler took a core from one of this process's threads for something else."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


class CoreShare:
    """Chooses how many threads each step of a loop runs with. Use: `with cores.step(): ...` around each step.

    most: the most threads (default: numba's thread count at construction, so NUMBA_NUM_THREADS=1 or an
    earlier numba.set_num_threads(1) keeps a single thread). busy: preemptions per second that mean the cores
    are shared. window: the least seconds of steps one judgement rests on. probe_every: windows between tries
    of one thread more.
    """

    def __init__(self, most=None, busy=50.0, window=0.25, probe_every=8):
        self.most = most or numba.get_num_threads()
        self.busy, self.window, self.probe_every = busy, window, probe_every
        self.threads, self.windows = self.most, 0
        self._start_window(self.most)

    def _start_window(self, threads):
        self.trying, self.seconds = threads, 0.0
        self.preempted_before = preemptions()

    @contextmanager
    def step(self):
        numba.set_num_threads(self.trying)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            if self.seconds >= self.window:
                self._judge()

    def _judge(self):
        """End of a window: keep, drop or add a thread, and start the next window."""
        preempted = preemptions() - self.preempted_before
        if preempted / self.seconds > self.busy:
            self.threads = max(1, self.trying - 1)
        else:
            self.threads = self.trying                   # a calm window: a tried thread more is kept
        self.windows += 1
        probe = self.threads < self.most and self.windows % self.probe_every == 0
        self._start_window(self.threads + 1 if probe else self.threads)


@contextmanager
def one_thread():
    """Run the block with a single numba thread, then restore the count: for work too small to share out (a
    gradient check's tiny float64 inputs), where a second thread only adds meetings, and on a busy machine
    waits at every one of them."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)
