"""Stopping a run cleanly: SIGINT (Ctrl-C) or SIGTERM lets the step in progress finish, then the run saves a
resumable checkpoint and raises Interrupted; a second signal stops at once (KeyboardInterrupt)."""
import signal
import threading


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: the step in progress was finished and a resumable checkpoint saved."""

    every_rank = True        # on several ranks, they agree after each step whether any of them got a signal

    def __init__(self, signum, path, epoch, step=None):
        where = f"after epoch {epoch}" if step is None else f"at epoch {epoch}, step {step}"
        super().__init__(f"interrupted by {signal.Signals(signum).name} {where}; saved {path}, continue with --resume")
        self.signum = signum


class StopRequests:
    """Within `with stop:`, SIGINT and SIGTERM are caught and kept: stop.signum is the first one (0: none yet).

    Signal handlers can be set only in the main thread; elsewhere (a notebook's worker thread) the block runs
    with the handlers it found, and signum stays 0.
    """

    def __init__(self):
        self.signum, self._handlers = 0, {}

    def _catch(self, signum, frame):
        if self.signum:                          # a second signal: stop now, without saving
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        self.signum = 0
        if threading.current_thread() is threading.main_thread():
            self._handlers = {s: signal.signal(s, self._catch) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers = {}
        return False

