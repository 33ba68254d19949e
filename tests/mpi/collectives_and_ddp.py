"""Checks across the ranks of ``mpiexec -n 2`` (tests/test_distributed_mpi.py launches it): the
collectives, DistributedDataParallel against one process, SyncBatchNorm, no_sync, the model
check at wrap time and the sharded loader, on each backend row given as an argument
("numpy", "array_api_strict:device1"). Prints one "ok" line per row and rank."""

from __future__ import annotations

import sys

import numpy as np

import gdnet as gd
from gdnet.nn.parallel import DistributedDataParallel

dist = gd.distributed
F = gd.nn.functional


def expect_error(kind, words, call):
    try:
        call()
    except kind as exc:
        assert all(w in str(exc) for w in words), str(exc)
        return
    raise AssertionError(f"no {kind.__name__} mentioning {words}")


def close(got, want, tolerance) -> bool:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and float(np.max(np.abs(got - want), initial=0.0)) <= tolerance * max(
        float(np.max(np.abs(want), initial=0.0)), 1.0)


def collectives(backend, rank):
    def values(host, dtype="float64"):
        t = gd.tensor(np.asarray(host), dtype=dtype)
        return t

    for op, want in (("sum", [3.0, -3.0]), ("mean", [1.5, -1.5]), ("max", [2.0, -1.0]), ("min", [1.0, -2.0])):
        t = values([rank + 1.0, -(rank + 1.0)])
        dist.all_reduce(t, op=op)
        assert t.tolist() == want and t.device == backend.device and t.dtype == backend.xp.float64, (op, t)
    t = values([rank + 1], "int64")
    dist.all_reduce(t)
    assert t.tolist() == [3] and t.dtype == backend.xp.int64
    t = values([[rank * 10.0, 1.0]])
    dist.broadcast(t, src=1)
    assert t.tolist() == [[10.0, 1.0]] and t.device == backend.device
    parts = dist.all_gather(values([rank, rank + 0.5]))
    assert [p.tolist() for p in parts] == [[0.0, 0.5], [1.0, 1.5]] and parts[1].device == backend.device
    filled = []
    dist.all_gather(filled, values([rank]))
    assert [p.tolist() for p in filled] == [[0.0], [1.0]]
    expect_error(ValueError, ["one shape and dtype", "rank 0: (1,)", "rank 1: (2,)"],
                 lambda: dist.all_gather(gd.zeros((rank + 1,))))
    dist.barrier()


def data(n, features, classes, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.integers(0, classes, n)


def mlp(seed, batchnorm):
    gd.manual_seed(seed)
    norm = [gd.nn.BatchNorm1d(16)] if batchnorm else []
    layers = [gd.nn.Linear(10, 16), *norm, gd.nn.Tanh(), gd.nn.Linear(16, 4)]
    return gd.nn.Sequential(*layers).to("float64")


def ddp_matches_one_process(rank, optimizer, batchnorm):
    """2 ranks x batch 64 against 1 process x batch 128 over the same examples: 10 steps
    (two epochs of five, each epoch in a new order), float64."""
    train = data(640, 10, 4, seed=7)
    reference = mlp(11, batchnorm)
    model = mlp(11 + rank, batchnorm)  # rank 1 starts elsewhere: wrapping copies rank 0's weights
    if batchnorm:
        model = gd.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DistributedDataParallel(model, bucket_cap_mb=0.0005)  # several buckets
    assert len(ddp._buckets) > 1

    def make(params):
        if optimizer == "sgd":
            return gd.optim.SGD(params, lr=0.1, momentum=0.9)
        return gd.optim.Adam(params, lr=0.01)

    pairs = [(reference, make(reference.parameters()), gd.data.DataLoader(train, batch_size=128, shuffle=True, seed=5)),
             (ddp, make(ddp.parameters()),
              gd.data.DataLoader(train, batch_size=64, shuffle=True, seed=5, distributed=True))]
    steps = 0
    for _ in range(2):
        for (x, y), (x_rank, y_rank) in zip(*(loader for _, _, loader in pairs)):
            for (net, opt, _), (inputs, labels) in zip(pairs, ((x, y), (x_rank, y_rank))):
                # batches arrive in float32; the float64 models take them in their own dtype
                loss = F.cross_entropy(net(inputs.astype("float64")), labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
            steps += 1
    assert steps == 10
    for name, want in reference.state_dict().items():
        got = gd.Tensor(model.state_dict()[name]).numpy()
        assert close(got, gd.Tensor(want).numpy(), 1e-10), (optimizer, batchnorm, name)


def no_sync_accumulates(rank):
    x, y = data(64, 10, 4, seed=9)
    model = DistributedDataParallel(mlp(3, False))
    reference = mlp(3, False)
    chunks = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]  # rank r: chunks r and 2 + r
    for inputs, labels in chunks:
        F.cross_entropy(reference(gd.tensor(inputs)), gd.tensor(labels)).backward()
    with model.no_sync():
        inputs, labels = chunks[rank]
        F.cross_entropy(model(gd.tensor(inputs)), gd.tensor(labels)).backward()
    local = [p.grad.numpy() for p in model.parameters()]
    inputs, labels = chunks[2 + rank]
    F.cross_entropy(model(gd.tensor(inputs)), gd.tensor(labels)).backward()
    for got, want, before in zip(model.parameters(), reference.parameters(), local):
        assert close(got.grad.numpy(), want.grad.numpy() / 2, 1e-10)
        assert not close(before, want.grad.numpy() / 2, 1e-3)  # inside no_sync nothing was averaged


def mismatched_models_fail_at_wrap(rank):
    gd.manual_seed(0)
    model = gd.nn.Sequential(gd.nn.Linear(5, 3 + rank), gd.nn.ReLU())
    expect_error(ValueError, ["model on rank 1 differs from rank 0's", "parameter '0.weight' has shape (4, 5)",
                              "(3, 5)", "every rank must build the same model"],
                 lambda: DistributedDataParallel(model))


def sharded_loader(rank):
    n = 37
    inputs, labels = np.arange(n, dtype=np.float32)[:, None], np.arange(n)
    gd.manual_seed(100 + rank)  # different drawn seeds: every rank takes rank 0's

    def epoch_indices(loader):
        mine = [i for _, y in loader for i in y.tolist()]
        return dist.all_gather_objects(mine)

    loader = gd.data.DataLoader((inputs, labels), batch_size=5, shuffle=True, distributed=True)
    assert (loader.rank, loader.num_replicas, len(loader)) == (rank, 2, 4)
    orders = []
    for _ in range(2):
        shards = epoch_indices(loader)
        together = shards[0] + shards[1]
        assert [len(s) for s in shards] == [19, 19] and sorted(set(together)) == list(range(n))
        assert len(together) == 38  # one example padded in, as DistributedSampler
        orders.append(together)
    assert orders[0] != orders[1]  # a new order each epoch
    again = [epoch_indices(gd.data.DataLoader((inputs, labels), batch_size=5, shuffle=True, seed=3,
                                              distributed=True)) for _ in range(2)]
    assert again[0] == again[1]  # the same order from the same seed
    unpadded = epoch_indices(gd.data.DataLoader((inputs, labels), batch_size=5, distributed=True, pad=False))
    assert [len(s) for s in unpadded] == [19, 18] and sorted(unpadded[0] + unpadded[1]) == list(range(n))
    dropped = epoch_indices(gd.data.DataLoader((inputs, labels), batch_size=6, shuffle=True, drop_last=True,
                                               distributed=True))
    assert [len(s) for s in dropped] == [18, 18] and len(set(dropped[0] + dropped[1])) == 36
    expect_error(ValueError, ["different seeds ([0, 1] by rank)"],
                 lambda: gd.data.DataLoader((inputs, labels), shuffle=True, seed=rank, distributed=True))
    expect_error(ValueError, ["datasets differ in length ([37, 36] by rank)"],
                 lambda: gd.data.DataLoader((inputs[: n - rank], labels[: n - rank]), distributed=True))


def main(rows):
    dist.init_process_group()
    rank = dist.get_rank()
    assert dist.get_world_size() == 2
    for row in rows:
        with gd.use_backend(row) as backend:
            collectives(backend, rank)
            for optimizer in ("sgd", "adam"):
                ddp_matches_one_process(rank, optimizer, batchnorm=False)
            ddp_matches_one_process(rank, "sgd", batchnorm=True)
            no_sync_accumulates(rank)
            mismatched_models_fail_at_wrap(rank)
            sharded_loader(rank)
        print(f"rank {rank}: {row} ok", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
