"""Cost of one optimizer.step(): gdnet against torch.optim, all nine optimizers, same process.

Two parameter sets: the 784-100-10 MLP's (79,510 parameters in 4 arrays) and a 784-1000-200-10
MLP's (987,210 parameters in 6 arrays). Each optimizer gets the same float32 initial weights
and fixed gradients in both libraries; a timed repeat is ``--steps`` calls of ``step()``
(the device synchronised before each clock read), gdnet and torch alternating repeat by repeat
so slow spells of a shared machine fall on both. The table gives the median microseconds per
step and gdnet's time over torch's.

    python benchmarks/optim_step.py                  # CPU: gdnet-numpy vs torch.optim on the CPU
    python benchmarks/optim_step.py --device gpu     # cupy vs torch CUDA (exits 2 without them)
    python benchmarks/optim_step.py --optimizers Adam,SGD --repeats 15 --out steps.md
    python benchmarks/optim_step.py --torch-threads 1  # torch on one thread, as NumPy's elementwise ops
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

from mlp import cpu_name, publish

MODELS = {
    "784-100-10 MLP": (784, 100, 10),
    "784-1000-200-10 MLP": (784, 1000, 200, 10),
}
# the hyperparameters each optimizer runs with (the rest are defaults), identical in both libraries
OPTIMIZERS = {
    "SGD": dict(lr=0.05, momentum=0.9),
    "Adagrad": dict(lr=0.01),
    "RMSprop": dict(lr=0.001),
    "Adadelta": dict(lr=1.0),
    "Adam": dict(lr=0.001),
    "AdamW": dict(lr=0.001),
    "NAdam": dict(lr=0.002),
    "Adamax": dict(lr=0.002),
    "RAdam": dict(lr=0.001),
}


def shapes(widths: tuple[int, ...]) -> list[tuple[int, ...]]:
    """PyTorch Linear layouts: weight (out, in) then bias (out,), layer by layer."""
    out = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        out += [(fan_out, fan_in), (fan_out,)]
    return out


def host_arrays(widths: tuple[int, ...], seed: int):
    """(initial weights, gradients) as float32 NumPy arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-0.05, 0.05, size=s).astype(np.float32) for s in shapes(widths)]
    grads = [rng.normal(0.0, 1e-2, size=s).astype(np.float32) for s in shapes(widths)]
    return weights, grads


class GdnetRow:
    def __init__(self, name, kwargs, weights, grads, backend):
        import gdnet as gd

        self.gd = gd
        self.backend = gd.set_backend(backend)
        self.params = [gd.tensor(w, requires_grad=True) for w in weights]
        for p, g in zip(self.params, grads):
            p.grad = gd.tensor(g)
        self.opt = getattr(gd.optim, name)(self.params, **kwargs)

    def run(self, steps: int) -> float:
        self.backend.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.opt.step()
        self.backend.synchronize()
        return time.perf_counter() - start


class TorchRow:
    def __init__(self, name, kwargs, weights, grads, device):
        import torch

        self.torch = torch
        self.device = device
        self.params = [torch.tensor(w, device=device, requires_grad=True) for w in weights]
        for p, g in zip(self.params, grads):
            p.grad = torch.tensor(g, device=device)
        self.opt = getattr(torch.optim, name)(self.params, **kwargs)

    def synchronize(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def run(self, steps: int) -> float:
        self.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.opt.step()
        self.synchronize()
        return time.perf_counter() - start


def measure(rows: dict, steps: int, repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each row, the rows taking turns in a rotating order."""
    for row in rows.values():
        row.run(warmup)
    times: dict[str, list[float]] = {key: [] for key in rows}
    order = list(rows)
    for repeat in range(repeats):
        turn = repeat % len(order)
        for key in order[turn:] + order[:turn]:
            times[key].append(rows[key].run(steps) / steps)
    return {key: statistics.median(values) for key, values in times.items()}


def torch_implementation(device: str) -> str:
    """What torch.optim's default (foreach=None) picks for float32 tensors on ``device``."""
    import torch
    from torch.optim.optimizer import _default_to_fused_or_foreach

    params = [torch.zeros(2, device=device)]
    fused, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    return "fused" if fused else "foreach (multi-tensor)" if foreach else "single-tensor for-loop"


def unavailable(device: str) -> str | None:
    """Why this device's rows cannot run here, or None."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install torch)"
    if device == "gpu":
        from gdnet import backends

        reason = backends.backend_class("cupy").unavailable_reason()
        if reason:
            return reason
        if not torch.cuda.is_available():
            return "torch has no CUDA device here (a CPU-only build, or no GPU)"
    return None


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--device", choices=("cpu", "gpu"), default="cpu",
        help="cpu: gdnet numpy backend vs torch CPU; gpu: gdnet cupy backend vs torch CUDA")
    add("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated subset (default: all nine)")
    add("--models", default=None, help=f"comma-separated subset of: {'; '.join(MODELS)} (default: both)")
    add("--steps", type=int, default=None, help="step() calls per timed repeat (default: 50 CPU, 200 GPU)")
    add("--repeats", type=int, default=9, help="timed repeats per row (default 9); the median is reported")
    add("--warmup", type=int, default=5, help="untimed steps before the first repeat (default 5)")
    add("--torch-threads", type=int, default=None,
        help="torch.set_num_threads for the run (default: torch's own; NumPy's elementwise ops use one thread)")
    add("--seed", type=int, default=0)
    add("--out", default=None, help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    args.optimizers = args.optimizers.split(",")
    unknown = set(args.optimizers) - set(OPTIMIZERS)
    if unknown:
        parser.error(f"--optimizers: unknown {sorted(unknown)}; expected some of {list(OPTIMIZERS)}")
    args.models = args.models.split(";") if args.models else list(MODELS)
    if set(args.models) - set(MODELS):
        parser.error(f"--models: expected some of {list(MODELS)} (separated by ';')")
    args.steps = args.steps or (200 if args.device == "gpu" else 50)
    if args.torch_threads is not None and args.torch_threads < 1:
        parser.error("--torch-threads must be at least 1")
    if min(args.steps, args.repeats) < 1 or args.warmup < 0:
        parser.error("--steps and --repeats must be at least 1, --warmup at least 0")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    reason = unavailable(args.device)
    if reason:
        print(f"optimizer-step benchmark cannot run on the {args.device} here: {reason}", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    backend, torch_device = ("cupy", "cuda") if args.device == "gpu" else ("numpy", "cpu")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    threads = torch.get_num_threads()
    peer = "torch CUDA" if args.device == "gpu" else f"torch CPU ({threads} thread{'s' if threads > 1 else ''})"
    lines = [f"| parameters | optimizer | gdnet µs/step | {peer} µs/step | gdnet ÷ torch |",
             "| --- | --- | ---: | ---: | ---: |"]
    ratios: dict[str, list[float]] = {}
    load = os.getloadavg()[0]
    for model in args.models:
        widths = MODELS[model]
        weights, grads = host_arrays(widths, args.seed)
        count = sum(w.size for w in weights)
        for name in args.optimizers:
            kwargs = OPTIMIZERS[name]
            rows = {"gdnet": GdnetRow(name, kwargs, weights, grads, backend),
                    "torch": TorchRow(name, kwargs, weights, grads, torch_device)}
            seconds = measure(rows, args.steps, args.repeats, args.warmup)
            ratio = seconds["gdnet"] / seconds["torch"]
            ratios.setdefault(model, []).append(ratio)
            lines.append(f"| {model} ({count:,}) | {name} | {seconds['gdnet'] * 1e6:,.0f} | "
                         f"{seconds['torch'] * 1e6:,.0f} | {ratio:.2f} |")
    load = max(load, os.getloadavg()[0])
    notes = [f"- gdnet ÷ torch: gdnet's median time per step over torch's; below 1 means gdnet is faster. "
             f"Median of {args.repeats} repeats of {args.steps} steps each, after {args.warmup} untimed steps, "
             "gdnet and torch taking turns."]
    for model, values in ratios.items():
        mean = math.exp(sum(math.log(r) for r in values) / len(values))
        notes.append(f"- {model}: geometric mean of the ratios {mean:.2f} over {len(values)} optimizers.")
    notes.append(f"- 1-minute load average during the run: up to {load:.2f} on {os.cpu_count()} CPUs; torch's "
                 "multi-threaded steps suffer most when other processes hold the CPUs (compare --torch-threads 1).")
    notes.append(f"- torch {torch.__version__}, torch.optim defaults (foreach=None: here "
                 f"{torch_implementation(torch_device)}), {threads} thread(s) "
                 f"({'set by --torch-threads' if args.torch_threads else 'its default'}); "
                 f"gdnet on the {backend} backend (NumPy {np.__version__}).")
    if args.device == "gpu":
        notes.append(f"- GPU: {torch.cuda.get_device_name(0)}; the device is synchronised before each clock read.")
    notes.append(f"- machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
                 f"Python {platform.python_version()}.")
    text = f"## optimizer.step() on the {args.device.upper()}, float32\n\n" + "\n".join(lines) + "\n\n" + \
        "\n".join(notes) + "\n"
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
