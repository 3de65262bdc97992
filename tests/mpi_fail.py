"""Run by tests/test_mpi.py under mpiexec: `alexnet.py train ARGS`, except that rank 1 runs out of memory in its
third step (while rank 0 waits for its gradients).

    mpiexec -n 2 python tests/mpi_fail.py train ...
"""
import sys

import alexnet
from tinycnn.distributed import world
from tinycnn.train import Trainer

if world().rank == 1:
    learn = Trainer.train_step

    def out_of_memory_at_step_3(trainer, batch):
        if batch.step == 2:
            raise MemoryError("cannot allocate 151 MB (planted by tests/mpi_fail.py)")
        return learn(trainer, batch)

    Trainer.train_step = out_of_memory_at_step_3

sys.exit(alexnet.main(sys.argv[1:]))
