"""Array operations per training step: gdnet on the torch backend against PyTorch eager.

On a GPU each array operation is a kernel launch of 10-20 µs, so at MNIST scale the number of
operations in a training step, not its arithmetic, sets the speed. This script counts the
non-view array operations of one steady-state training step (the third, so optimizer state
exists) with torch's dispatch mode (``TorchDispatchMode`` sees every aten operation that
reaches a tensor), by phase: loader (the next batch), forward, loss, backward, update
(``zero_grad`` and ``step``). Models:

    mlp-sgd    784-100-10 ReLU MLP, batch 128, SGD lr 0.05 momentum 0.9
    mlp-adam   the same MLP with Adam lr 1e-3
    cnn-sgd    benchmarks/cnn.py's CNN (two conv + BatchNorm + ReLU + max-pool blocks), SGD momentum
    lstm-adam  an LSTM over the 28 rows of an image (hidden 64) read out by a linear layer, Adam

Rows: gdnet on the torch backend (its DataLoader, resident, shuffled); PyTorch eager with the
optimizer's default implementation on that device (a loop per parameter on the CPU, foreach on
CUDA) and with ``fused=True``; both eager rows gather batches from a uint8 tensor with a
permutation drawn once per epoch. Not counted as operations: views (reshape, transpose,
slicing: no kernel), allocations without values (``empty``), profiler markers; reads of a value
into Python (``_local_scalar_dense``) are counted apart.

    python benchmarks/launches.py                 # torch CPU, counted as on a GPU (see below)
    python benchmarks/launches.py --device cuda --kernels    # on a CUDA machine

``--device cpu`` (the default) switches off the checks gdnet makes only where reading values is
free (labels in range: one ``aminmax`` and two reads per step on the CPU), so the count is what
the same step runs on a GPU. ``--device cuda`` counts on the GPU itself; with ``--kernels`` it
also counts the CUDA kernels one step launches (torch.profiler through CUPTI, which sees every
launch of the process) for gdnet on torch CUDA, gdnet on CuPy (where it imports) and PyTorch
eager.
"""

from __future__ import annotations

import argparse
import collections
import sys
from functools import partial

import numpy as np

BATCH = 128
EXAMPLES = 4 * BATCH
PHASES = ("loader", "forward", "loss", "backward", "update")
MODELS = ("mlp-sgd", "mlp-adam", "cnn-sgd", "lstm-adam")
# aten operations that run no kernel of their own
NOT_OPERATIONS = {"empty", "empty_strided", "empty_like", "_record_function_enter_new", "_record_function_exit",
                  "record_stream"}
READS = {"_local_scalar_dense"}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(EXAMPLES, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=EXAMPLES)


# -- counting ---------------------------------------------------------------------------------
def _counter():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        """Counts aten operations by (phase, name)."""

        def __init__(self):
            super().__init__()
            self.phase = "?"
            self.operations: collections.Counter = collections.Counter()
            self.reads: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in READS:
                self.reads[self.phase] += 1
            elif not func.is_view and name not in NOT_OPERATIONS:
                self.operations[(self.phase, name)] += 1
            return func(*args, **(kwargs or {}))

    return Counter()


def count_step(phases, warmup: int = 2):
    """Run ``phases`` (name -> function, in order) ``warmup`` times, then once counted.
    Returns ({phase: operations}, {phase: reads}, {(phase, op): count})."""
    for _ in range(warmup):
        for run in phases.values():
            run()
    counter = _counter()
    with counter:
        for phase, run in phases.items():
            counter.phase = phase
            run()
    by_phase = collections.Counter()
    for (phase, _), n in counter.operations.items():
        by_phase[phase] += n
    return dict(by_phase), dict(counter.reads), dict(counter.operations)


# -- gdnet on the torch backend ---------------------------------------------------------------
def build_model(nn, model: str):
    """The network of ``model`` from ``nn`` (gdnet.nn or torch.nn: the same names and layouts)."""
    if model.startswith("mlp"):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    if model.startswith("cnn"):
        return nn.Sequential(
            nn.Unflatten(1, (1, 28)), nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    class LastStep(nn.Module):
        """An LSTM over the image's rows, read out at the last row."""

        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(28, 64, batch_first=True), nn.Linear(64, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :])

    return LastStep()


def _optimizer(optim, model, parameters, **options):
    if model.endswith("adam"):
        return optim.Adam(parameters, lr=1e-3, **options)
    return optim.SGD(parameters, lr=0.05, momentum=0.9, **options)


def step_phases(next_batch, net, opt, cross_entropy):
    """The five phases of a training step as closures; ``next_batch()`` returns (x, y)."""
    state: dict = {}

    def load():
        state["x"], state["y"] = next_batch()

    def forward():
        state["scores"] = net(state["x"])

    def loss():
        state["loss"] = cross_entropy(state["scores"], state["y"])

    def backward():
        state["loss"].backward()

    def update():
        opt.step()
        opt.zero_grad()

    return {"loader": load, "forward": forward, "loss": loss, "backward": backward, "update": update}


def gdnet_phases(model: str, backend: str, device: str, as_on_gpu: bool):
    """One gdnet training step on ``backend``: its DataLoader (resident, shuffled), the model."""
    import gdnet as gd
    from gdnet import backends

    gd.set_backend(backend, device)
    if as_on_gpu:  # what a GPU runs: no checks that read values
        owner = backends.backend_class(backend)
        owner.value_range = classmethod(lambda cls, array: None)
    gd.manual_seed(0)
    images, labels = _data()
    loader = gd.data.DataLoader(gd.data.ArrayDataset(images, labels), batch_size=BATCH, shuffle=True)
    net = build_model(gd.nn, model)
    batches = iter(())

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:  # a new epoch: its one permutation upload is not part of a step
            batches = iter(loader)
            return next(batches)

    return step_phases(next_batch, net, _optimizer(gd.optim, model, net.parameters()), gd.nn.functional.cross_entropy)


# -- PyTorch eager ----------------------------------------------------------------------------
def torch_phases(model: str, device: str, fused: bool):
    """One PyTorch eager training step: batches gathered from a uint8 tensor on ``device``."""
    import torch

    torch.manual_seed(0)
    images, labels = _data()
    images = torch.as_tensor(images, device=device)
    labels = torch.as_tensor(labels, device=device)
    net = build_model(torch.nn, model).to(device)
    opt = _optimizer(torch.optim, model, net.parameters(), **({"fused": True} if fused else {}))
    state = {"start": EXAMPLES}

    def next_batch():
        if state["start"] >= EXAMPLES:  # a new epoch: one permutation, not part of a step
            state["order"], state["start"] = torch.randperm(EXAMPLES, device=device), 0
        index = state["order"][state["start"]:state["start"] + BATCH]
        state["start"] += BATCH
        return images[index].float().div_(255), labels[index]

    return step_phases(next_batch, net, opt, torch.nn.functional.cross_entropy)


# -- the table --------------------------------------------------------------------------------
def rows_for(model: str, device: str, as_on_gpu: bool):
    """(label, phases) of every row that runs on ``device``."""
    rows = [("gdnet (torch backend)", partial(gdnet_phases, model, "torch", device, as_on_gpu)),
            ("PyTorch eager", partial(torch_phases, model, device, False))]
    if device != "meta":  # torch has no fused optimizers for meta tensors
        rows.append(("PyTorch eager, fused optimizer", partial(torch_phases, model, device, True)))
    return rows


def count_table(models, device: str, as_on_gpu: bool) -> str:
    lines = ["| model | row | " + " | ".join(PHASES) + " | total | reads |",
             "|---" * (len(PHASES) + 4) + "|"]
    for model in models:
        for label, make in rows_for(model, device, as_on_gpu):
            phases = make()
            counts, reads, _ = count_step(phases)
            cells = [str(counts.get(p, 0)) for p in PHASES]
            lines.append(f"| {model} | {label} | " + " | ".join(cells)
                         + f" | **{sum(counts.values())}** | {sum(reads.values())} |")
    return "\n".join(lines)


def detail(model: str, device: str, as_on_gpu: bool) -> str:
    """Every counted operation of one gdnet step, by phase (for --detail)."""
    _, _, operations = count_step(gdnet_phases(model, "torch", device, as_on_gpu))
    return "\n".join(f"  {phase:<9} {name:<32} {n}" for (phase, name), n in sorted(operations.items()))


# -- CUDA kernels (a GPU machine) ---------------------------------------------------------------
def kernels_per_step(phases) -> tuple[int, int]:
    """(kernel launches, memory copies) of one step, through torch.profiler (CUPTI)."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2):
        for run in phases.values():
            run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for run in phases.values():
            run()
        torch.cuda.synchronize()
    device_events = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    copies = [e for e in device_events if e.name.startswith(("Memcpy", "Memset"))]
    return len(device_events) - len(copies), len(copies)


def kernel_table(models) -> str:
    from gdnet import backends

    lines = ["| model | row | CUDA kernels per step | memory copies and sets |", "|---|---|---|---|"]
    for model in models:
        rows = [(f"{label} (CUDA)", make) for label, make in rows_for(model, "cuda", False)]
        if backends.backend_class("cupy").is_available():
            rows.insert(1, ("gdnet (cupy backend)", partial(gdnet_phases, model, "cupy", None, False)))
        for label, make in rows:
            launches, copies = kernels_per_step(make())
            lines.append(f"| {model} | {label} | {launches} | {copies} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device: cpu (counted as on a GPU), meta or cuda")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--with-cpu-checks", action="store_true",
                        help="on the CPU, keep the checks gdnet makes only where reads are free")
    parser.add_argument("--kernels", action="store_true", help="on CUDA: also count CUDA kernel launches per step")
    parser.add_argument("--detail", default=None, metavar="MODEL", help="list gdnet's operations for one model")
    parser.add_argument("--out", default=None, help="also write the tables (markdown) to this file")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("launches.py counts with torch's dispatch mode: install torch", file=sys.stderr)
        return 2
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"--models: unknown {sorted(unknown)}; expected some of {', '.join(MODELS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: torch has no CUDA device here", file=sys.stderr)
        return 2
    as_on_gpu = args.device == "cpu" and not args.with_cpu_checks
    if args.detail:
        print(detail(args.detail, args.device, as_on_gpu))
        return 0
    where = f"torch {args.device}" + (" (checks that read values switched off, as on a GPU)" if as_on_gpu else "")
    text = (f"## Array operations per training step ({where}, torch {torch.__version__}, batch {BATCH})\n\n"
            + count_table(models, args.device, as_on_gpu) + "\n")
    if args.kernels:
        if not args.device.startswith("cuda"):
            parser.error("--kernels needs --device cuda")
        text += "\n## CUDA kernel launches per training step\n\n" + kernel_table(models) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
