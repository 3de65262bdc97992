"""Training on several processes with MPI (mpi4py): `mpiexec -n N python alexnet.py train ...`.

    ranks.py          the ranks of a run and the collective calls training needs (Allreduce, Allgather, Bcast)
    data_parallel.py  data parallelism: every rank the whole model, 1/N of each batch, gradients summed
    towers.py         model parallelism: the paper's two GPUs as two ranks, each one tower of AlexNet
    traffic.py        what each scheme sends, per layer and per step, and what that costs on a network

mpi4py is imported only when a launcher started the process (see ranks.world()): without mpiexec, tinycnn runs
as one process and needs no MPI at all.
"""
from .data_parallel import DataParallel
from .ranks import EveryRankFailed, Ranks, failed_on_every_rank, launched_rank, world

__all__ = ["DataParallel", "EveryRankFailed", "Ranks", "failed_on_every_rank", "launched_rank", "world"]
