"""Sharing the cores: fewer threads while other programs keep them busy, all of them again when they are free.

numba's threads meet at the end of every parallel loop (a layer runs several). Alone on the machine that costs
microseconds. When another program wants the same cores, the scheduler sets one of our threads aside for a
time slice of milliseconds, and every other thread waits for it at the next meeting point, spinning and so
taking cores from the other program too. Two 2-thread jobs on 2 cores then slow each other down ten times and
more, where two 1-thread jobs would each keep a core.

The sign is in the operating system's count of involuntary context switches (getrusage): how often the
scheduler took a core from one of our threads because something else was waiting for it. Alone it stays near
zero (a stray one now and then); beside a second job it runs to hundreds a second. So, counting only what
happens inside the steps, judged over windows of at least `window` seconds of them:

    more than `busy` preemptions a second                 -> the next window runs with one thread fewer
    every `probe_every`-th window, with fewer than `most`   -> that window tries a thread more, keeps it if calm

Each step puts the thread count back as it found it, so whatever runs between steps (an evaluation pass, a
second loop) runs with the count it had. Alone this costs nothing (the count stays low and every thread is
kept); beside a second job each ends up with the cores it can have.
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
    earlier numba.set_num_threads(1) keeps a single thread); at most NUMBA_NUM_THREADS. busy: preemptions per
    second that mean the cores are shared. window: the least seconds of steps one judgement rests on.
    probe_every: a try of one thread more every this many windows.
    """

    def __init__(self, most=None, busy=50.0, window=0.25, probe_every=8):
        limit = numba.config.NUMBA_NUM_THREADS
        most = numba.get_num_threads() if most is None else most
        if not 1 <= most <= limit:
            raise ValueError(f"CoreShare: most must be 1 to {limit} threads (NUMBA_NUM_THREADS), got {most}")
        if not (busy >= 0 and window > 0 and probe_every >= 1):
            raise ValueError(f"CoreShare: expected busy >= 0, window > 0 and probe_every >= 1, got busy={busy}, "
                             f"window={window}, probe_every={probe_every}")
        self.most, self.busy, self.window, self.probe_every = most, busy, window, probe_every
        self.threads, self.windows = most, 0
        self._start_window(most)

    def _start_window(self, threads):
        self.trying, self.seconds, self.preempted = threads, 0.0, 0

    @contextmanager
    def step(self):
        threads_before = numba.get_num_threads()
        numba.set_num_threads(self.trying)
        preempted, start = preemptions(), time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.preempted += preemptions() - preempted
            numba.set_num_threads(threads_before)
            if self.seconds >= self.window:
                self._judge()

    def _judge(self):
        """End of a window: keep, drop or add a thread, and start the next window."""
        if self.preempted / self.seconds > self.busy:
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
