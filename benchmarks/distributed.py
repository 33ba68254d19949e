"""Data-parallel training over MPI: throughput on 1 and N processes, and where the time goes.

For the 784-100-10 MLP and the CNN of cnn.py (SGD lr 0.05 momentum 0.9, batch 128 per
process, Fashion-MNIST, numpy backend, BLAS on one thread per process), each process count
runs in its own ``mpiexec -n N`` job and reports:

* examples/s over all processes, and the scaling efficiency: examples/s on N processes over N
  times examples/s on one;
* all-reduce ms/step: a blocking all-reduce of the model's gradient buckets alone, timed apart;
* exposed ms/step: how much longer a DistributedDataParallel step takes than the same step in
  ``no_sync()`` (no communication), and the fraction of the all-reduce time hidden behind the
  backward pass, 1 - exposed / all-reduce (0 when none is hidden).

Steps are timed in interleaved blocks of synchronised and no_sync steps, and the medians kept.

    python benchmarks/distributed.py                       # mpiexec -n 1, then -n 2
    python benchmarks/distributed.py --ranks 1 2 4 --steps 20
    python benchmarks/distributed.py --cost-model          # the README's alpha-beta table
    mpiexec -n 2 python benchmarks/distributed.py --worker  # one job, rows as JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mlp import publish

RESULT_MARK = "DISTRIBUTED-RESULT "
MB = 2**20


# -- the worker (runs under mpiexec) ----------------------------------------------------------
def _models(gd):
    from cnn import gdnet_model as cnn

    def mlp(gd):
        return gd.nn.Sequential(gd.nn.Flatten(), gd.nn.Linear(784, 100), gd.nn.ReLU(), gd.nn.Linear(100, 10))

    return {"mlp": mlp, "cnn": cnn}


def _data(gd, args):
    try:
        train, _ = gd.datasets.fashion_mnist(args.data_dir)
        return train.inputs[: args.subset], train.targets[: args.subset]
    except gd.data.DatasetNotFoundError:
        import numpy as np  # random images of the same shape: the timing does not depend on the pixels

        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (args.subset, 28, 28), dtype=np.uint8), rng.integers(0, 10, args.subset)


def _median_step(gd, run, steps: int) -> float:
    """Seconds per step, the slowest rank's (a step ends when every rank's has)."""
    gd.distributed.barrier()
    start = time.perf_counter()
    run(steps)
    seconds = time.perf_counter() - start
    return max(gd.distributed.all_gather_objects(seconds)) / steps


class _Steps:
    """Training steps of one DistributedDataParallel model, synchronised or in no_sync()."""

    def __init__(self, gd, name: str, args, data):
        from gdnet.nn.parallel import DistributedDataParallel

        gd.manual_seed(0)
        self.gd, self.model = gd, _models(gd)[name](gd)
        self.ddp = DistributedDataParallel(self.model, bucket_cap_mb=args.bucket_cap_mb)
        self.opt = gd.optim.SGD(self.ddp.parameters(), lr=0.05, momentum=0.9)
        self.loader = gd.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, seed=0, distributed=True,
                                         drop_last=True)
        self.batches = iter(())

    def _step(self) -> None:
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        x, y = batch
        loss = self.gd.nn.functional.cross_entropy(self.ddp(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def synced(self, steps: int) -> None:
        for _ in range(steps):
            self._step()

    def alone(self, steps: int) -> None:
        with self.ddp.no_sync():
            for _ in range(steps):
                self._step()

    def reduce_only(self, steps: int) -> None:
        """The all-reduce of the gradient buckets alone, as DistributedDataParallel sends them."""
        flats = [self.gd.nn.parallel._flat([self.gd.Tensor(p.data) for p in b.params]) for b in self.ddp._buckets]
        communicator = self.gd.distributed.communicator_for(flats[0])
        for _ in range(steps):
            for flat in flats:
                communicator.all_reduce(flat * 1.0, "sum")


def worker(args) -> None:
    import gdnet as gd

    gd.set_backend("numpy")
    gd.distributed.init_process_group()
    rank, world = gd.distributed.get_rank(), gd.distributed.get_world_size()
    data = _data(gd, args)
    for name in args.models:
        steps = _Steps(gd, name, args, data)
        steps.synced(args.warmup)
        timings: dict[str, list[float]] = {"synced": [], "alone": [], "reduce_only": []}
        for _ in range(args.rounds):  # interleaved, so a slow spell of the machine falls on each kind
            for kind, seconds in timings.items():
                seconds.append(_median_step(gd, getattr(steps, kind), args.steps))
        step, local, reduce = (statistics.median(timings[k]) for k in ("synced", "alone", "reduce_only"))
        exposed = max(step - local, 0.0)
        row = dict(model=name, ranks=world, batch=args.batch_size, examples_per_second=world * args.batch_size / step,
                   step_ms=step * 1e3, local_step_ms=local * 1e3, allreduce_ms=reduce * 1e3, exposed_ms=exposed * 1e3,
                   hidden=None if world == 1 else min(max(1.0 - exposed / reduce, 0.0), 1.0),
                   gradient_mb=sum(p.size * 4 for p in steps.model.parameters()) / MB, buckets=len(steps.ddp._buckets))
        if rank == 0:
            print(RESULT_MARK + json.dumps(row), flush=True)
    gd.distributed.destroy_process_group()


# -- the launcher ------------------------------------------------------------------------------
def launch(args, ranks: int) -> list[dict]:
    mpiexec = Path(sys.executable).with_name("mpiexec")
    command = [str(mpiexec), "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), sys.executable,
               __file__, "--worker", *args.forward]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"mpiexec -n {ranks} failed:\n{done.stdout}\n{done.stderr}")
    return [json.loads(line[len(RESULT_MARK):]) for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]


def table(rows: list[dict]) -> str:
    one = {row["model"]: row["examples_per_second"] for row in rows if row["ranks"] == 1}
    lines = ["| model | processes | examples/s | scaling efficiency | step ms | step ms in no_sync() "
             "| all-reduce ms/step | exposed ms/step | hidden behind backward |", "|---" * 9 + "|"]
    for row in rows:
        base = one.get(row["model"])
        efficiency = f"{row['examples_per_second'] / (row['ranks'] * base):.2f}" if base else "-"
        hidden = "-" if row["hidden"] is None else f"{row['hidden']:.0%}"
        buckets = f"{row['buckets']} bucket" + ("s" if row["buckets"] > 1 else "")
        lines.append(f"| {row['model']} ({row['gradient_mb']:.2f} MB of gradients, {buckets}) | "
                     f"{row['ranks']} | {row['examples_per_second']:,.0f} | {efficiency} | {row['step_ms']:.1f} | "
                     f"{row['local_step_ms']:.1f} | {row['allreduce_ms']:.2f} | {row['exposed_ms']:.2f} | {hidden} |")
    return "\n".join(lines)


# -- the cost model ----------------------------------------------------------------------------
def ring_allreduce_seconds(nbytes: float, ranks: int, gbit_per_s: float, alpha: float, buckets: int) -> float:
    """Ring all-reduce (reduce-scatter then all-gather): each bucket costs 2 (p - 1) messages of
    latency alpha, and every rank sends and receives 2 (p - 1) / p of the bytes at the link's
    bandwidth (Patarasuk & Yuan 2009; Thakur, Rabenseifner & Gropp 2005)."""
    beta = 8.0 / (gbit_per_s * 1e9)  # seconds per byte
    return buckets * 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * nbytes * beta


def cost_model(alpha: float) -> str:
    from cnn import gdnet_model

    import gdnet as gd

    cnn = sum(p.size for p in gdnet_model(gd).parameters())
    models = [(f"the CNN, {cnn:,} parameters", cnn * 4), ("10M parameters", 10_000_000 * 4)]
    lines = ["| gradients (float32) | link | buckets | 8 ranks | 64 ranks | 512 ranks |", "|---|---|---|---|---|---|"]
    for label, nbytes in models:
        default = 1 + -(-max(nbytes - MB, 0) // (25 * MB))  # DDP's: the first up to 1 MiB, then 25 MiB each
        schemes = [("1", 1), (f"{default} (the default: 1 MiB, then 25 MiB)", default),
                   (f"{-(-nbytes // MB)} of 1 MiB", -(-nbytes // MB))]
        schemes = [(what, k) for i, (what, k) in enumerate(schemes) if k not in [k2 for _, k2 in schemes[:i]]]
        for link in (25, 100):
            for what, buckets in schemes:
                times = [ring_allreduce_seconds(nbytes, p, link, alpha, buckets) * 1e3 for p in (8, 64, 512)]
                lines.append(f"| {label} ({nbytes / MB:.1f} MiB) | {link} Gb/s | {what} | "
                             + " | ".join(f"{t:.1f} ms" for t in times) + " |")
    return "\n".join(lines)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--ranks", type=int, nargs="+", default=[1, 2], help="process counts to launch (default 1 2)")
    add("--models", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"])
    add("--batch-size", type=int, default=128, help="examples per process and step (default 128)")
    add("--steps", type=int, default=10, help="steps per timed block (default 10)")
    add("--rounds", type=int, default=5, help="timed blocks of each kind (default 5)")
    add("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    add("--bucket-cap-mb", type=float, default=25)
    add("--subset", type=int, default=12_800, help="training images used (default 12,800)")
    add("--data-dir", default=None)
    add("--out", default=None, help="also write the table to this file")
    add("--cost-model", action="store_true", help="print the alpha-beta ring all-reduce table and exit")
    add("--alpha-us", type=float, default=10.0, help="latency per message for --cost-model (default 10 us)")
    add("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.forward = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--worker",)]
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.cost_model:
        print(cost_model(args.alpha_us * 1e-6))
        return 0
    if args.worker:
        worker(args)
        return 0
    rows = [row for ranks in args.ranks for row in launch(args, ranks)]
    rows.sort(key=lambda row: (args.models.index(row["model"]), row["ranks"]))
    text = table(rows) + (f"\n\n{os.cpu_count()} CPU cores; one BLAS thread per process; batch {args.batch_size} per "
                          f"process; `python benchmarks/distributed.py {' '.join(args.forward)}`".rstrip() + "\n")
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
