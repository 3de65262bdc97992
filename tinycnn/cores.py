"""Sharing the cores: fewer threads while other programs keep them busy, all of them again when they are free.

numba's threads meet at the end of every parallel loop (a layer runs several). Alone on the machine that costs
microseconds. When another program wants the same cores, the scheduler sets one of our threads aside for a
time slice of milliseconds, and every other thread waits for it at the next meeting point, spinning and so
taking cores from the other program too. Two 2-thread jobs on 2 cores then slow each other down ten times and
more, where two 1-thread jobs would each keep a core.

The sign is in the operating system's count of involuntary context switches (getrusage): how often the
scheduler took a core from one of our threads because something else was waiting for it. Beside a second job
it runs high; alone it is low, but not always low enough to tell the two apart (a virtual machine's own
housekeeping preempts too: 24-68 a second alone against 78-99 beside a second copy, on this project's 2-core
machine). So the count only says when to look, and the speed of the steps decides. Counting only what happens
inside the steps, over windows of at least `window` seconds of them:

    more than `busy` preemptions a second        -> the next window tries one thread fewer; fewer threads are
                                                    kept only if their steps ran faster (the cores are shared),
                                                    else the count is back and no such try comes for probe_every
                                                    windows
    probe_every windows after settling on fewer than `most` -> a window tries one thread more, kept unless its
                                                    steps ran slower; after each such try that failed, the wait
                                                    to the next doubles (at most 16 times as long)

Speed is work per second, the work of a step being what `step(work)` is told (the Trainer: its batch size).
Each step puts the thread count back as it found it, so whatever runs between steps (an evaluation pass, a
second loop) runs with the count it had. Alone this costs at most one window in probe_every + 1 on a thread
fewer; beside a second job each ends up with the cores it can have.
"""
import resource
import time
from contextlib import contextmanager

import numba


def preemptions():
    """How many times so far the scheduler took a core from one of this process's threads for something else."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


class CoreShare:
    """Chooses how many threads each step of a loop runs with. Use: `with cores.step(work): ...` around each step.

    most: the most threads (default: numba's thread count at construction, so NUMBA_NUM_THREADS=1 or an
    earlier numba.set_num_threads(1) keeps a single thread); at most NUMBA_NUM_THREADS. busy: preemptions per
    second that mean the cores may be shared. window: the least seconds of steps one judgement rests on.
    probe_every: windows between tries of one thread more (doubling while the tries fail).
    """

    margin = 0.05                   # speeds closer than this are alike: a thread fewer must be this much faster
    longest_gap = 16                # probe_every times this: the longest wait between tries of a thread more

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
        self.no_try_before = 2          # the first window warms up (first calls, cold caches): no try after it
        self.probe_gap = self.next_probe = probe_every
        self.speed = {}                 # threads -> work per second in the last window run with that many
        self._start_window(most)

    def _start_window(self, threads):
        self.trying, self.seconds, self.preempted, self.work = threads, 0.0, 0, 0.0

    @contextmanager
    def step(self, work=1.0):
        """Run one step (its `work`: a batch size, say, so that steps of unequal size compare fairly)."""
        threads_before = numba.get_num_threads()
        numba.set_num_threads(self.trying)
        preempted, start = preemptions(), time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.preempted += preemptions() - preempted
            self.work += work
            numba.set_num_threads(threads_before)
            if self.seconds >= self.window:
                self._judge()

    def _judge(self):
        """End of a window: settle on its thread count or go back, and choose the next window's count."""
        tried, settled = self.trying, self.threads
        speed = self.speed[tried] = self.work / self.seconds
        busy = self.preempted / self.seconds > self.busy
        self.windows += 1
        if tried < settled:                              # a thread fewer: kept only if faster
            if speed > (1 + self.margin) * self.speed[settled]:
                self.threads, self.probe_gap = tried, self.probe_every
                self.next_probe = self.windows + self.probe_gap
            else:
                self.no_try_before = self.windows + self.probe_every
        elif tried > settled:                            # a thread more: kept unless slower
            if speed >= (1 - self.margin) * self.speed[settled]:
                self.threads, self.probe_gap = tried, self.probe_every
            else:                                        # still shared: look again later and later
                self.probe_gap = min(2 * self.probe_gap, self.longest_gap * self.probe_every)
            self.next_probe = self.windows + self.probe_gap
        elif busy and tried > 1 and self.windows >= self.no_try_before:
            self._start_window(tried - 1)
            return
        probe = self.threads < self.most and self.windows >= self.next_probe
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
