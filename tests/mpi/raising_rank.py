"""Rank 1 raises while rank 0 waits in a collective (tests/test_distributed_mpi.py launches it
under ``mpiexec -n 2``): the job must end, non-zero, instead of waiting for ever."""

import gdnet as gd

gd.distributed.init_process_group()
if gd.distributed.get_rank() == 1:
    raise ValueError("rank 1 fails on purpose")
gd.distributed.all_reduce(gd.ones((3,)))  # rank 0 waits here for rank 1
print("rank 0 finished the all-reduce", flush=True)
