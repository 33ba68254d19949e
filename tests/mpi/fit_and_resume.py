"""``fit`` across the ranks of ``mpiexec -n 2`` (tests/test_distributed_mpi.py launches it), on each
backend row given after the output folder: identical final weights on every rank, logged metrics
equal to one process's evaluation of the whole data, one writer of checkpoints and logs, and a
run resumed from the checkpoint equal to an uninterrupted one. Prints one "ok" line per row and rank."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import gdnet as gd
from gdnet.nn.parallel import DistributedDataParallel

dist = gd.distributed
F = gd.nn.functional
TRAIN = (np.random.default_rng(1).normal(size=(203, 8)), np.random.default_rng(2).integers(0, 3, 203))
VALIDATION = (np.random.default_rng(3).normal(size=(101, 8)), np.random.default_rng(4).integers(0, 3, 101))


def parts():
    gd.manual_seed(0)
    model = gd.nn.Sequential(gd.nn.Linear(8, 16), gd.nn.ReLU(), gd.nn.Linear(16, 3))
    optimizer = gd.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train = gd.data.DataLoader(TRAIN, batch_size=32, shuffle=True, seed=1, distributed=True)  # padded: 102 each
    validation = gd.data.DataLoader(VALIDATION, batch_size=25, distributed=True, pad=False)  # 51 and 50
    return model, optimizer, train, validation


def host_state(model):
    return {name: gd.Tensor(array).numpy() for name, array in model.state_dict().items()}


def run(folder: Path, rank: int, row: str):
    mine = folder / f"rank{rank}"
    folder.mkdir(parents=True, exist_ok=True)
    model, optimizer, train, validation = parts()
    history = gd.train.fit(DistributedDataParallel(model), F.cross_entropy, optimizer, train, 3, val_loader=validation,
                           callbacks=[gd.train.ModelCheckpoint(mine / "checkpoints", monitor="val_accuracy"),
                                      gd.train.CSVLogger(folder / f"log-rank{rank}.csv")], verbose=2)
    weights = host_state(model)
    theirs = dist.all_gather_objects(weights)
    assert all(np.array_equal(theirs[0][k], theirs[1][k]) for k in weights), "the replicas differ"

    # the logged metrics are one process's evaluation of the whole validation set
    with gd.no_grad():
        scores = model(gd.tensor(VALIDATION[0], dtype="float32"))
        labels = gd.tensor(VALIDATION[1])
        loss = F.cross_entropy(scores, labels).item()
        accuracy = F.accuracy(scores, labels).item()
    last = history.rows[-1]
    assert abs(last["val_loss"] - loss) <= 1e-5 * abs(loss), (last["val_loss"], loss)
    assert abs(last["val_accuracy"] - accuracy) <= 1e-6, (last["val_accuracy"], accuracy)
    assert last["examples_per_second"] > 0
    if rank == 0:  # over a plain loader nothing is all-reduced: rank 0 may evaluate alone
        alone = gd.train.evaluate(model, gd.data.DataLoader(VALIDATION, batch_size=25))
        assert abs(alone[0] - loss) <= 1e-5 * abs(loss) and abs(alone[1] - accuracy) <= 1e-6, (alone, loss, accuracy)

    dist.barrier()  # rank 0 has written everything
    written = folder / "rank0" / "checkpoints"
    assert sorted(p.name for p in written.iterdir()) == ["best.safetensors", "last.safetensors"]
    assert not (folder / "rank1").exists() and not (folder / "log-rank1.csv").exists()  # rank 1 writes nothing
    assert len((folder / "log-rank0.csv").read_text().splitlines()) == 1 + 3

    # two epochs, then a new run resumed from rank 0's checkpoint on every rank: the same weights
    model, optimizer, train, validation = parts()
    gd.train.fit(DistributedDataParallel(model), F.cross_entropy, optimizer, train, 2, val_loader=validation,
                 callbacks=[gd.train.ModelCheckpoint(mine / "two-epochs", monitor="val_accuracy")], verbose=0)
    dist.barrier()
    model, optimizer, train, validation = parts()
    checkpoint = gd.load_into(folder / "rank0" / "two-epochs" / "last.safetensors", model, optimizer, None, train)
    assert checkpoint.epoch == 2
    gd.train.fit(DistributedDataParallel(model), F.cross_entropy, optimizer, train, 3, val_loader=validation,
                 initial_epoch=2, verbose=0)
    resumed = host_state(model)
    assert all(np.allclose(resumed[k], weights[k], rtol=1e-6, atol=1e-7) for k in weights), "resume differs"
    print(f"rank {rank}: {row} ok", flush=True)


def main(folder: str, rows: list[str]):
    dist.init_process_group()
    rank = dist.get_rank()
    for row in rows:
        with gd.use_backend(row):
            run(Path(folder) / row.replace(":", "-"), rank, row)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
