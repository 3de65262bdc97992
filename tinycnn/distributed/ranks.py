"""The processes of a run as MPI sees them, and the few collective operations training on them needs.

`mpiexec -n N python alexnet.py train ...` starts N copies of one program. Each is a *rank* (0 .. N-1) of MPI's
world communicator: the ranks run the same code on different rows of the data and talk only through MPI
calls. Every rank must make the same calls in the same order; a rank that skips one, or stops, leaves the
others waiting for it forever, which is why a rank that fails alone calls abort().

    ranks = world()            this process's Ranks: .rank, .size (1 without mpiexec, and mpi4py is not imported)
    ranks.shard(n)             (start, stop): the rows of a batch of n this rank holds (ranks.shares(n): how many each)
    ranks.sum(values)          a few numbers added up over the ranks (Allreduce): every rank gets the sums
    ranks.sum_in_place(array)  an array added up over the ranks in its own buffer (Allreduce, MPI.IN_PLACE)
    ranks.largest(value)       the largest of one number over the ranks (Allreduce with MAX)
    ranks.rows(array)          every rank's rows of an array, in rank order (Allgather)
    ranks.from_root(f)         f() run on rank 0 alone; its result, or its error, on every rank (Bcast)
    with ranks.agree(): ...    a block run on every rank: if it raised anywhere, it raises everywhere
    ranks.abort(code)          stop every rank now (MPI Abort)
"""
import contextlib
import os
import time

import numpy as np

# What launchers put in each process's environment: MPICH's mpiexec (Hydra) PMI_*, Open MPI OMPI_COMM_WORLD_*,
# PMIx-based launchers (Open MPI 5, Slurm's srun) PMIX_RANK.
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
ABORT_DELAY = 0.5                   # seconds between a failed rank's last line and its abort (Ranks.abort)


def launched_rank():
    """This process's rank as the launcher set it (0 without one), read without starting MPI."""
    for name in RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


class EveryRankFailed(Exception):
    """Raised on the ranks other than 0 when a block under Ranks.agree() failed: rank 0 tells the error."""

    def __init__(self, message):
        super().__init__(message)
        self.every_rank = True


class Ranks:
    """This process's place among the ranks of a run. comm: an mpi4py communicator, or None for one process.

    With one process every operation returns its input: the single-process path runs the same code and does
    no communication at all.
    """

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1

    def __repr__(self):
        return f"Ranks(rank={self.rank}, size={self.size})"

    def shares(self, n):
        """How many rows of a batch of n each rank holds: the first n % size ranks n // size + 1, the others
        n // size (32 over 3 ranks: 11, 11, 10); a rank holds none when n < size (an epoch's last batch)."""
        base, extra = divmod(n, self.size)
        return [base + (r < extra) for r in range(self.size)]

    def shard(self, n):
        """(start, stop): the rows [start, stop) of a batch of n this rank holds, in rank order."""
        shares = self.shares(n)
        start = sum(shares[:self.rank])
        return start, start + shares[self.rank]

    def sum(self, values):
        """values: a few numbers -> float64 array of their sums over the ranks (the same on every rank)."""
        values = np.array(values, np.float64)
        return self.sum_in_place(values)

    def sum_in_place(self, array):
        """array (C-contiguous): replaced by its sum over the ranks, in its own buffer. -> array."""
        if self.size > 1:
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
        return array

    def largest(self, value):
        """The largest of an int over the ranks."""
        if self.size == 1:
            return value
        from mpi4py import MPI
        return self.comm.allreduce(value, op=MPI.MAX)

    def rows(self, array):
        """array: (n_r, ...) on rank r -> (n_0 + n_1 + ..., ...): every rank's rows in rank order, on every rank."""
        if self.size == 1:
            return array
        return np.concatenate(self.comm.allgather(array))

    def from_root(self, function):
        """function() run on rank 0 alone (reading a file only it may see): -> its result, on every rank. If it
        raises, it raises on every rank: rank 0 its own error, the others EveryRankFailed."""
        if self.size == 1:
            return function()
        result = error = None
        if self.rank == 0:
            try:
                result = function()
            except Exception as e:                  # sent to the others so they do not wait for a result
                error = e
        failed = self.comm.bcast(None if error is None else str(error), root=0)
        if error is not None:
            error.every_rank = True
            raise error
        if failed is not None:
            raise EveryRankFailed(f"rank 0: {failed}")
        return self.comm.bcast(result, root=0)

    @contextlib.contextmanager
    def agree(self):
        """Run a block on every rank and agree on how it ended. If it raised on any rank, it raises on every rank
        once all have finished it: on rank 0 the error of the first rank that failed (its own, or a ValueError
        naming the rank), on the others EveryRankFailed. So a mistake every rank finds (a missing --data) is told
        once, by rank 0, and every rank exits cleanly instead of waiting for the others."""
        error = None
        try:
            yield
        except Exception as e:
            if self.size == 1:
                raise
            error = e
        if self.size == 1:
            return
        said = self.comm.allgather(None if error is None else str(error))
        failed = [rank for rank, message in enumerate(said) if message is not None]
        if not failed:
            return
        if self.rank != 0:
            raise EveryRankFailed(said[failed[0]])
        if failed[0] == 0:
            error.every_rank = True
            raise error
        raise EveryRankFailed(f"rank {failed[0]} of {self.size}: {said[failed[0]]}")

    def abort(self, code):
        """Stop every rank now, with exit code `code`: the others may be waiting in a collective call for this one.

        First a pause of ABORT_DELAY seconds: mpiexec forwards what a rank wrote to stderr (the line saying why)
        through a pipe, and an abort that kills the ranks before it has read the pipe loses that line (seen once
        in a full run of the suite)."""
        if self.size > 1:
            time.sleep(ABORT_DELAY)
            self.comm.Abort(code)


def failed_on_every_rank(error):
    """Whether every rank stopped with this error (so rank 0 alone reports it and no rank needs to abort)."""
    return getattr(error, "every_rank", False)


_world = None


def world():
    """The Ranks of this run: MPI's world communicator when a launcher (mpiexec) started this process, else a
    single rank (and mpi4py is not imported). Started with several ranks on one machine, each rank's numba
    threads are the machine's cores shared out between them (unless NUMBA_NUM_THREADS says otherwise)."""
    global _world
    if _world is None:
        if not any(name in os.environ for name in RANK_VARIABLES):
            _world = Ranks()
        else:
            from mpi4py import MPI
            _world = Ranks(MPI.COMM_WORLD)
            if _world.size == 1:
                _world = Ranks()
            else:
                share_cores(MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED).Get_size())
    return _world


def share_cores(ranks_here):
    """Give this rank 1/ranks_here of the machine's cores for numba's threads (2 ranks on 2 cores: 1 each)."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return
    import numba
    numba.set_num_threads(max(1, numba.config.NUMBA_NUM_THREADS // ranks_here))
