"""Training speed of the 784-100-10 ReLU MLP on Fashion-MNIST: gdnet against its peers.

CPU (the default): gdnet on the numpy backend, a hand-written NumPy loop doing the same work,
and PyTorch CPU eager (when torch imports). GPU (``--device gpu``, or ``benchmarks/gpu.py``):
gdnet on the cupy backend and gdnet on the torch backend (CUDA) against PyTorch CUDA eager,
data resident on the GPU for all, at batch sizes 128 and 1024.

Every row trains the same model (PyTorch's default init, SGD lr 0.05 momentum 0.9, shuffled
each epoch) in its own subprocess, so peak RSS is that row's alone. With ``--repeats R`` the
rows run R times, interleaved in a rotating order, and every timed epoch of every repeat goes
into the median. The first epoch of each run is a warm-up and is not timed when epochs >= 3.

    python benchmarks/mlp.py                       # CPU, 4 epochs, 5 repeats
    python benchmarks/mlp.py --epochs 5 --out cpu.md
    python benchmarks/mlp.py --profile 300         # cProfile of 300 gdnet training steps
    python benchmarks/gpu.py --out gpu.md          # GPU rows (exits 2 without cupy + CUDA)
    python benchmarks/gpu.py --backend numpy --epochs 1 --repeats 1   # GPU code path on a CPU
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HIDDEN = 100
FEATURES = 28 * 28
CLASSES = 10
LR = 0.05
MOMENTUM = 0.9
EVAL_BATCH = 1000
SYSTEM_DATA = "/usr/share/datasets/fashion-mnist"
RESULT_MARK = "BENCHMARK-RESULT "
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS")
# the project's ceilings for gdnet / peer on the CPU (the NumPy loop's is the goal, not yet met)
TARGETS = {"numpy": 1.05, "torch": 1.3}
KINDS = {"cpu": ("gdnet", "numpy", "torch"), "gpu": ("gdnet", "gdnet-torch", "torch")}
LABELS = {
    "gdnet": "gdnet ({backend} backend)",
    "gdnet-torch": "gdnet (torch backend, {torch_device})",
    "numpy": "hand-written NumPy loop",
    "torch": "PyTorch {device} eager",
}
MB = 2**20
# CPUs' worth of time other processes may use during an epoch before it counts as disturbed
QUIET = 0.2


class Skip(Exception):
    """This row cannot run here (peer library or device missing)."""


# -- data for the peer rows (gdnet reads its own through its datasets module) -----------------
def data_dir(explicit: str | None) -> Path:
    """The folder holding the four Fashion-MNIST IDX files."""
    names = [n for n in (explicit, os.environ.get("GDNET_DATA"), SYSTEM_DATA) if n]
    for name in names:
        for folder in (Path(name), Path(name) / "fashion-mnist"):
            if any(folder.glob("train-images-idx3-ubyte*")):
                return folder
    raise SystemExit(f"Fashion-MNIST IDX files not found in any of {names}; "
                     "pass --data-dir or set GDNET_DATA")


def load_idx(folder: Path, stem: str):
    """One IDX file (gzip or raw) as a writable NumPy uint8 array of its stored shape."""
    import numpy as np

    path = folder / f"{stem}.gz"
    raw = gzip.open(path).read() if path.exists() else (folder / stem).read_bytes()
    if raw[2] != 0x08:
        raise ValueError(f"{stem}: expected unsigned-byte IDX data, got type code {raw[2]:#x}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def load_host(folder: Path):
    """(train images, train labels, test images, test labels) as uint8 arrays."""
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple(load_idx(folder, stem) for stem in stems)


def publish(text: str, out: str | None) -> None:
    """Print a benchmark's table, and write it to the file ``out`` where one is named (--out)."""
    print(text)
    if out:
        Path(out).write_text(text)


def machine_cpu_s() -> float:
    """CPU seconds every process on the machine has used (0 where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed_epochs(epochs: int, run_epoch, synchronize=lambda: None) -> dict:
    """Seconds each call of ``run_epoch()`` took, the device synchronised around it, and the
    CPUs' worth of time other processes used meanwhile (0 on a quiet machine)."""
    times, loads = [], []
    for _ in range(epochs):
        synchronize()
        machine, own, start = machine_cpu_s(), own_cpu_s(), time.perf_counter()
        run_epoch()
        synchronize()
        seconds = time.perf_counter() - start
        others = (machine_cpu_s() - machine) - (own_cpu_s() - own)
        times.append(seconds)
        loads.append(max(0.0, others) / seconds)
    return {"epoch_times": times, "epoch_loads": loads}


# -- the rows (each runs in its own subprocess) -----------------------------------------------
def gdnet_setup(spec: dict):
    """Backend, model, optimizer and loaders of the gdnet row, as a user writes them."""
    import gdnet as gd

    try:
        backend = gd.set_backend(spec["backend"], spec.get("backend_device"))
    except gd.BackendUnavailableError as exc:
        raise Skip(str(exc)) from None
    gd.manual_seed(spec["seed"])
    train, test = gd.datasets.fashion_mnist(spec["data_dir"])
    loader = gd.data.DataLoader(train, batch_size=spec["batch_size"], shuffle=True)
    model = gd.nn.Sequential(gd.nn.Flatten(), gd.nn.Linear(FEATURES, HIDDEN), gd.nn.ReLU(),
                             gd.nn.Linear(HIDDEN, CLASSES))
    opt = gd.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return gd, backend, model, opt, loader, test


def gdnet_steps(gd, model, opt, batches) -> None:
    """The training loop exactly as the README shows it."""
    for x, y in batches:
        loss = gd.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def run_gdnet(spec: dict) -> dict:
    gd, backend, model, opt, loader, test = gdnet_setup(spec)
    result: dict = {"backend": backend.describe(), "resident": loader.resident}
    result.update(timed_epochs(spec["epochs"], lambda: gdnet_steps(gd, model, opt, loader),
                               backend.synchronize))
    if backend.name == "cupy":
        import cupy

        # the pool keeps every block it ever held, so total_bytes is its high-water mark;
        # used_bytes is what lives after training (dataset, parameters, momentum)
        pool = cupy.get_default_memory_pool()
        result.update(gpu_held_mb=pool.total_bytes() / MB, gpu_alloc_mb=pool.used_bytes() / MB)
    elif backend.name == "torch" and backend.device.type == "cuda":
        import torch

        result.update(gpu_held_mb=torch.cuda.max_memory_reserved() / MB,
                      gpu_alloc_mb=torch.cuda.max_memory_allocated() / MB)
    _, result["test_accuracy"] = gd.train.evaluate(model, gd.data.DataLoader(test, batch_size=EVAL_BATCH))
    return result


def run_numpy(spec: dict) -> dict:
    """The same work by hand: float32 throughout, in place where that saves a copy."""
    import numpy as np

    images, labels, test_images, test_labels = load_host(Path(spec["data_dir"]))
    rng = np.random.default_rng(spec["seed"])
    n, batch = len(images), spec["batch_size"]
    flat = images.reshape(n, FEATURES)
    targets = labels.astype(np.intp)

    def layer(fan_in, fan_out):  # PyTorch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1.0 / np.sqrt(fan_in)
        return (rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                rng.uniform(-bound, bound, fan_out).astype(np.float32))

    w1, b1 = layer(FEATURES, HIDDEN)
    w2, b2 = layer(HIDDEN, CLASSES)
    params = (w1, b1, w2, b2)
    velocity = tuple(np.zeros_like(p) for p in params)
    scratch = tuple(np.empty_like(p) for p in params)
    scale, all_rows = np.float32(1.0 / 255.0), np.arange(batch)

    def forward(x):
        h = x @ w1.T
        h += b1
        np.maximum(h, 0.0, out=h)
        z = h @ w2.T
        z += b2
        return h, z

    def epoch():
        order = rng.permutation(n)
        loss_sum = np.float32(0.0)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            x = flat[idx].astype(np.float32)
            x *= scale
            y, rows = targets[idx], all_rows[: len(idx)]
            h, z = forward(x)
            # mean softmax cross-entropy, then its gradient, in z's buffer
            z -= z.max(axis=1, keepdims=True)
            picked = z[rows, y]
            np.exp(z, out=z)
            total = z.sum(axis=1, keepdims=True)
            loss_sum += np.mean(np.log(total[:, 0]) - picked)
            z /= total
            z[rows, y] -= 1.0
            z *= np.float32(1.0 / len(idx))
            # backward
            dh = z @ w2
            dh *= h > 0
            grads = (dh.T @ x, dh.sum(axis=0), z.T @ h, z.sum(axis=0))
            # SGD with momentum (PyTorch's rule), in place
            for p, v, tmp, g in zip(params, velocity, scratch, grads):
                v *= MOMENTUM
                v += g
                np.multiply(v, LR, out=tmp)
                p -= tmp

    result = timed_epochs(spec["epochs"], epoch)
    test_x = test_images.reshape(len(test_images), FEATURES).astype(np.float32) * scale
    predicted = np.argmax(forward(test_x)[1], axis=1)
    result["test_accuracy"] = float(np.mean(predicted == test_labels))
    return result


def run_torch(spec: dict) -> dict:
    try:
        import torch
    except ImportError as exc:
        raise Skip(f"torch does not import ({exc})") from None
    gpu = spec["device"] == "gpu"
    if gpu and not torch.cuda.is_available():
        raise Skip("torch.cuda.is_available() is False")
    device = torch.device("cuda" if gpu else "cpu")
    images, labels, test_images, test_labels = load_host(Path(spec["data_dir"]))
    torch.manual_seed(spec["seed"])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(FEATURES, HIDDEN),
                                torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    data = torch.from_numpy(images).to(device)
    targets = torch.from_numpy(labels).to(device=device, dtype=torch.int64)
    generator = torch.Generator(device=device)
    generator.manual_seed(spec["seed"])
    n, batch = len(images), spec["batch_size"]
    cross_entropy = torch.nn.functional.cross_entropy

    def epoch():
        order = torch.randperm(n, generator=generator, device=device)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            x = data[idx].float().div_(255.0)
            loss = cross_entropy(model(x), targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    result = timed_epochs(spec["epochs"], epoch, torch.cuda.synchronize if gpu else lambda: None)
    result.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    if gpu:
        result.update(gpu_held_mb=torch.cuda.max_memory_reserved() / MB,
                      gpu_alloc_mb=torch.cuda.max_memory_allocated() / MB,
                      gpu_name=torch.cuda.get_device_name())
    with torch.no_grad():
        test_x = torch.from_numpy(test_images).to(device).float().div_(255.0)
        predicted = model(test_x).argmax(dim=1).cpu().numpy()
    result["test_accuracy"] = float((predicted == test_labels).mean())
    return result


RUNNERS = {"gdnet": run_gdnet, "gdnet-torch": run_gdnet, "numpy": run_numpy, "torch": run_torch}


def worker(spec: dict) -> None:
    """Run one row and print its result as one marked JSON line."""
    try:
        result = RUNNERS[spec["kind"]](spec)
    except Skip as exc:
        result = {"skipped": str(exc)}
    import numpy as np

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    result.update(peak_rss_mb=peak_rss_mb, numpy=np.__version__)
    print(RESULT_MARK + json.dumps(result), flush=True)


# -- the driver -------------------------------------------------------------------------------
def row_specs(args) -> list[dict]:
    wanted = args.rows.split(",") if args.rows else KINDS[args.device]
    common = {"device": args.device, "epochs": args.epochs, "seed": args.seed,
              "data_dir": str(args.data_dir), "backend": args.backend}
    # gdnet on torch runs on CUDA beside cupy, and on the CPU where --backend numpy checks the
    # GPU rows' code path
    torch_row = {"backend": "torch", "backend_device": "cuda" if args.backend == "cupy" else "cpu"}
    return [dict(common, kind=kind, batch_size=batch, **(torch_row if kind == "gdnet-torch" else {}))
            for batch in args.batch_sizes for kind in KINDS[args.device] if kind in wanted]


def label(spec: dict) -> str:
    device = "CUDA" if spec["device"] == "gpu" else "CPU"
    return LABELS[spec["kind"]].format(backend=spec["backend"], device=device,
                                       torch_device=spec.get("backend_device", ""))


def wait_for_quiet(limit_s: float) -> None:
    """Wait, up to ``limit_s``, until other processes use under QUIET CPUs."""
    deadline, waited = time.monotonic() + limit_s, False
    while True:
        machine = machine_cpu_s()
        time.sleep(0.5)
        load = (machine_cpu_s() - machine) / 0.5
        if load < QUIET or time.monotonic() >= deadline:
            break
        if not waited:
            print(f"  waiting up to {limit_s:.0f} s for other processes to go quiet "
                  f"(they use {load:.1f} CPUs)", file=sys.stderr, flush=True)
            waited = True


def run_row(spec: dict) -> dict:
    """One row in a fresh interpreter; its result dict (or {"error": ...})."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    sys.stderr.write(done.stderr)
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"failed (exit {done.returncode}): {tail}"}


def warmup_epochs(spec: dict) -> int:
    return 1 if spec["epochs"] >= 3 else 0


def disturbed(spec: dict, result: dict) -> bool:
    """Whether other processes used more than QUIET CPUs during a timed epoch of this run."""
    loads = result.get("epoch_loads", [])[warmup_epochs(spec):]
    return any(load > QUIET for load in loads)


def run_all(specs: list[dict], args) -> tuple[list[list[dict]], int]:
    """Each row ``args.repeats`` times, interleaved: repeat r starts at row r (mod the row
    count). A run disturbed by other processes is run again, up to ``args.retries`` times.
    Returns the results per row and the number of runs thrown away."""
    results: list[list[dict]] = [[] for _ in specs]
    thrown_away = 0
    for r in range(args.repeats):
        for i in [(r + j) % len(specs) for j in range(len(specs))]:
            if results[i] and ("skipped" in results[i][0] or "error" in results[i][0]):
                continue
            print(f"[{r + 1}/{args.repeats}] {label(specs[i])}, batch {specs[i]['batch_size']}",
                  file=sys.stderr, flush=True)
            for attempt in range(args.retries + 1):
                if args.quiet_wait > 0:
                    wait_for_quiet(args.quiet_wait)
                result = run_row(specs[i])
                if attempt == args.retries or not disturbed(specs[i], result):
                    break
                thrown_away += 1
                print("  disturbed by other processes; running it again", file=sys.stderr,
                      flush=True)
            results[i].append(result)
    return results, thrown_away


def quiet_epochs(spec: dict, runs: list[dict]) -> tuple[list[float], list[float], int]:
    """(seconds, other processes' load) of the undisturbed timed epochs of ``runs`` (all
    timed epochs where none is undisturbed), and how many disturbed ones were left out."""
    skip = warmup_epochs(spec)
    timed = [pair for run in runs
             for pair in zip(run["epoch_times"][skip:], run["epoch_loads"][skip:])]
    quiet = [pair for pair in timed if pair[1] <= QUIET] or timed
    return [t for t, _ in quiet], [load for _, load in quiet], len(timed) - len(quiet)


def paired_ratio(specs: list[dict], results: list[list[dict]], kind: str, batch: int):
    """Median over repeats of gdnet's run / the peer's run of the same repeat (each the
    median of its epochs): runs of one repeat are close in time, so slow drifts of the
    machine's speed cancel. None where a row has no runs."""
    rows = {s["kind"]: r for s, r in zip(specs, results) if s["batch_size"] == batch}
    spec = next(s for s in specs if s["kind"] == kind and s["batch_size"] == batch)
    pairs = [(mine, theirs) for mine, theirs in zip(rows.get("gdnet", []), rows.get(kind, []))
             if "epoch_times" in mine and "epoch_times" in theirs]
    if not pairs:
        return None
    return statistics.median(
        statistics.median(quiet_epochs(spec, [mine])[0])
        / statistics.median(quiet_epochs(spec, [theirs])[0]) for mine, theirs in pairs)


def summarise(spec: dict, runs: list[dict]) -> dict:
    first = runs[0]
    if "skipped" in first:
        return {"note": f"skipped: {first['skipped']}"}
    if "error" in first:
        return {"note": first["error"]}
    epochs, loads, dropped = quiet_epochs(spec, runs)
    summary = {
        "median": statistics.median(epochs), "low": min(epochs), "high": max(epochs),
        "count": len(epochs), "dropped": dropped, "load": max(loads),
        "rss": max(run["peak_rss_mb"] for run in runs),
        "accuracy": statistics.median(run["test_accuracy"] for run in runs),
    }
    for key in ("gpu_held_mb", "gpu_alloc_mb"):
        if key in first:
            summary[key] = max(run[key] for run in runs)
    return summary


def table(args, specs: list[dict], summaries: list[dict]) -> tuple[str, dict]:
    """The markdown table and the gdnet ratios {(peer kind, batch): gdnet s / peer s}."""
    n_train = 60000
    gdnet_median = {s["batch_size"]: m.get("median")
                    for s, m in zip(specs, summaries) if s["kind"] == "gdnet"}
    gpu = args.device == "gpu"
    head = ["row", "batch", "s/epoch (median)", "min-max", "examples/s"]
    head += ["peak GPU MB held", "GPU MB allocated"] if gpu else []
    head += ["peak RSS MB", "test acc", "gdnet ÷ row"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios = {}
    for spec, m in zip(specs, summaries):
        cells = [label(spec), str(spec["batch_size"])]
        if "note" in m:
            lines.append("| " + " | ".join(cells + [m["note"]] + [""] * (len(head) - 3)) + " |")
            continue
        mine = gdnet_median.get(spec["batch_size"])
        if spec["kind"] == "gdnet":
            ratio_cell = "1.00 (reference)"
        elif mine is None:
            ratio_cell = "n/a"
        else:
            ratios[(spec["kind"], spec["batch_size"])] = mine / m["median"]
            ratio_cell = f"{mine / m['median']:.2f}"
        cells += [f"{m['median']:.3f}", f"{m['low']:.3f}-{m['high']:.3f}",
                  f"{n_train / m['median']:,.0f}"]
        if gpu:
            cells += [f"{m[k]:.0f}" if k in m else "n/a" for k in ("gpu_held_mb", "gpu_alloc_mb")]
        cells += [f"{m['rss']:.0f}", f"{m['accuracy']:.4f}", ratio_cell]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), ratios


def footer(args, specs: list[dict], results: list[list[dict]], summaries: list[dict],
           ratios: dict, thrown_away: int) -> str:
    runs = [run for rows in results for run in rows if "epoch_times" in run]
    counts = sorted({m["count"] for m in summaries if "count" in m})
    dropped = sum(m.get("dropped", 0) for m in summaries)
    loads = [m["load"] for m in summaries if "load" in m]
    warmup = ("epoch 1 of each run is a warm-up and not timed" if args.epochs >= 3
              else "every epoch timed (under 3 epochs no warm-up is excluded)")
    lines = [
        f"- {args.epochs} epochs x {args.repeats} repeats per row, rows interleaved, each run in "
        f"its own process; {warmup}; median over {'/'.join(map(str, counts)) or 0} timed "
        "epochs per row. An epoch is 60000 examples and includes the batch gather, cast and "
        "scaling.",
        f"- noise from other processes: an epoch during which they used more than {QUIET} CPUs "
        f"is disturbed; {thrown_away} disturbed run(s) were run again (--retries "
        f"{args.retries}) and {dropped} disturbed epoch(s) left out of the medians; the most "
        f"other processes used during a counted epoch: {max(loads, default=0.0):.2f} CPUs.",
        f"- model 784-{HIDDEN}-{CLASSES} ReLU, PyTorch default init, SGD lr {LR} momentum "
        f"{MOMENTUM}, shuffled each epoch, seed {args.seed}; test acc on the 10000 test images "
        "(median over repeats).",
        "- gdnet ÷ row: gdnet's median s/epoch over this row's at the same batch size; below 1 "
        "means gdnet is faster.",
    ]
    for (kind, batch), ratio in sorted(ratios.items()):
        target = TARGETS.get(kind) if args.device == "cpu" else None
        verdict = ""
        if target:
            verdict = f" (target <= {target}: {'met' if ratio <= target else 'MISSED'})"
        paired = paired_ratio(specs, results, kind, batch)
        lines.append(f"- gdnet / {kind}, batch {batch}: {ratio:.2f}{verdict}; paired by "
                     f"repeat: {paired:.2f}")
    torch_run = next((r for r in runs if "torch_threads" in r), None)
    if torch_run:
        gpu_name = f"; GPU {torch_run['gpu_name']}" if "gpu_name" in torch_run else ""
        lines.append(f"- torch {torch_run['torch']} with its default threads: "
                     f"torch.get_num_threads() = {torch_run['torch_threads']}{gpu_name}")
    if args.device == "gpu":
        lines.append("- GPU memory: gdnet on cupy = CuPy memory pool total_bytes (its high-water mark) "
                     "and used_bytes after training; gdnet on torch and PyTorch = max_memory_reserved "
                     "and max_memory_allocated. All include the resident dataset.")
    blas_env = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in BLAS_ENV)
    numpy_version = runs[0]["numpy"] if runs else "?"
    lines.append(f"- machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} "
                 f"{platform.machine()}, Python {platform.python_version()}, numpy "
                 f"{numpy_version} ({blas_name()}); environment as found: {blas_env}")
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def blas_name() -> str:
    try:
        import numpy as np

        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"BLAS {blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # NumPy without show_config(mode="dicts")
        return "BLAS unknown"


# -- profiling the gdnet row ------------------------------------------------------------------
def profile(args) -> None:
    """cProfile of ``args.profile`` gdnet training steps (after 20 untimed ones)."""
    import cProfile
    import itertools
    import pstats

    spec = next(s for s in row_specs(args) if s["kind"] == "gdnet")
    gd, _, model, opt, loader, _ = gdnet_setup(spec)

    def batches(count):
        return itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), count)

    gdnet_steps(gd, model, opt, batches(20))
    profiler = cProfile.Profile()
    profiler.enable()
    gdnet_steps(gd, model, opt, batches(args.profile))
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    for order in ("tottime", "cumulative"):
        print(f"\n== {args.profile} gdnet steps on {spec['backend']}, batch "
              f"{spec['batch_size']}, by {order} ==")
        stats.sort_stats(order).print_stats(30)


# -- command line -----------------------------------------------------------------------------
def add_run_flags(add, retries: int) -> None:
    """The flags every benchmark here shares: data, noise handling, seed, output, profiling and
    the worker's hidden one (``add`` is a parser's ``add_argument``)."""
    add("--data-dir", default=None,
        help=f"Fashion-MNIST folder (default $GDNET_DATA, then {SYSTEM_DATA})")
    add("--quiet-wait", type=float, default=60.0, metavar="SECONDS",
        help="before each run, wait up to this long for other processes to go quiet (default 60)")
    add("--retries", type=int, default=retries,
        help=f"run a row again when other processes used over {QUIET} CPUs during a timed "
        f"epoch, up to this many times (default {retries})")
    add("--seed", type=int, default=0)
    add("--out", default=None, help="also write the table (markdown) to this file")
    add("--profile", type=int, default=0, metavar="STEPS",
        help="instead of the table, print a cProfile of STEPS gdnet training steps")
    add("--worker", default=None, help=argparse.SUPPRESS)


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--device", choices=("cpu", "gpu"), default="cpu",
        help="cpu: gdnet-numpy, NumPy loop, torch CPU; gpu: gdnet-cupy, torch CUDA")
    # five runs of three timed epochs: on a shared machine fewer let one slow spell move the median
    add("--epochs", type=int, default=4, help="epochs per run (default 4)")
    add("--repeats", type=int, default=5, help="runs of each row, interleaved (default 5)")
    add("--batch-sizes", default=None, help="comma-separated (default 128; 128,1024 on gpu)")
    add("--backend", default=None,
        help="gdnet's backend (default numpy; cupy on gpu, where numpy checks the code path)")
    add("--rows", default=None,
        help="comma-separated subset of gdnet,numpy,torch (cpu) or gdnet,gdnet-torch,torch (gpu)")
    add_run_flags(add, retries=2)
    args = parser.parse_args(argv)
    if args.worker is None:
        if args.epochs < 1 or args.repeats < 1 or args.retries < 0:
            parser.error("--epochs and --repeats must be at least 1, --retries at least 0")
        unknown = set(args.rows.split(",")) - set(KINDS[args.device]) if args.rows else set()
        if unknown:
            parser.error(f"--rows: unknown {sorted(unknown)}; expected {KINDS[args.device]}")
        default_batches = "128,1024" if args.device == "gpu" else "128"
        args.batch_sizes = [int(b) for b in (args.batch_sizes or default_batches).split(",")]
        args.backend = args.backend or ("cupy" if args.device == "gpu" else "numpy")
        args.data_dir = data_dir(args.data_dir)
    return args


def gpu_unavailable(args) -> str | None:
    """Why the gdnet GPU rows cannot run here, or None."""
    if args.device != "gpu" or args.backend != "cupy":
        return None
    from gdnet import backends

    return backends.backend_class("cupy").unavailable_reason()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker is not None:
        worker(json.loads(args.worker))
        return 0
    reason = gpu_unavailable(args)
    if reason:
        print(f"GPU benchmark cannot run here: {reason}\nRun it on a machine with a CUDA GPU "
              "and CuPy, or pass --backend numpy to check its code path on the CPU.",
              file=sys.stderr)
        return 2
    if args.profile:
        profile(args)
        return 0
    specs = row_specs(args)
    results, thrown_away = run_all(specs, args)
    summaries = [summarise(s, r) for s, r in zip(specs, results)]
    body, ratios = table(args, specs, summaries)
    title = f"{args.device.upper()}: 784-{HIDDEN}-{CLASSES} MLP on Fashion-MNIST"
    notes = footer(args, specs, results, summaries, ratios, thrown_away)
    text = f"## {title}\n\n{body}\n\n{notes}\n"
    publish(text, args.out)
    return 1 if any("error" in run for rows in results for run in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
