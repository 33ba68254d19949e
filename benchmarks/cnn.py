"""Training speed of a small CNN on Fashion-MNIST: gdnet (numpy backend) against PyTorch CPU.

The network, the same in both rows (PyTorch's default init, SGD lr 0.05 momentum 0.9, batch
128, shuffled each epoch)::

    conv 1->32 3x3 pad 1, BatchNorm2d, ReLU, max-pool 2
    conv 32->64 3x3 pad 1, BatchNorm2d, ReLU, max-pool 2
    flatten, linear 64*7*7 -> 128, ReLU, linear 128 -> 10

Each row runs in its own subprocess (so peak RSS is its own); with ``--repeats R`` the rows run
R times, interleaved; a run that other processes disturbed runs again (``--retries``). Every
epoch is timed (with 3 or more epochs the first is a warm-up and left out, as in mlp.py); the
table gives the median of the undisturbed ones. Test accuracy is taken in evaluation mode
(BatchNorm's running statistics) on the 10,000 test images.

    python benchmarks/cnn.py                      # 1 epoch on the 60,000 training images
    python benchmarks/cnn.py --subset 10000       # a quicker run on the first 10,000
    python benchmarks/cnn.py --profile 50         # cProfile of 50 gdnet training steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

# the MLP benchmark's data reading, training loop, epoch timer (with other processes' CPU use)
# and machine facts
from mlp import (
    BLAS_ENV,
    QUIET,
    RESULT_MARK,
    Skip,
    add_run_flags,
    blas_name,
    cpu_name,
    data_dir,
    disturbed,
    gdnet_steps,
    load_host,
    publish,
    quiet_epochs,
    timed_epochs,
    wait_for_quiet,
)

LR = 0.05
MOMENTUM = 0.9
EVAL_BATCH = 1000
MB = 2**20
TARGET = 1.0  # the project's ceiling for gdnet / PyTorch CPU on this network (issue: at most 1.0x)
LABELS = {"gdnet": "gdnet (numpy backend)", "torch": "PyTorch CPU eager"}


def subset(images, labels, n: int | None):
    return (images, labels) if n is None else (images[:n], labels[:n])


# -- the rows (each runs in its own subprocess) -----------------------------------------------
def gdnet_model(gd):
    nn = gd.nn
    return nn.Sequential(
        nn.Unflatten(1, (1, 28)),  # the loader's (B, 28, 28) batches -> (B, 1, 28, 28)
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def gdnet_setup(spec: dict):
    """Backend, model, optimizer and loaders of the gdnet row, as a user writes them."""
    import gdnet as gd

    gd.set_backend("numpy")
    gd.manual_seed(spec["seed"])
    train, test = gd.datasets.fashion_mnist(spec["data_dir"])
    train = gd.data.ArrayDataset(*subset(train.inputs, train.targets, spec["subset"]))
    loader = gd.data.DataLoader(train, batch_size=spec["batch_size"], shuffle=True)
    model = gdnet_model(gd)
    opt = gd.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return gd, model, opt, loader, test


def run_gdnet(spec: dict) -> dict:
    gd, model, opt, loader, test = gdnet_setup(spec)
    result = timed_epochs(spec["epochs"], lambda: gdnet_steps(gd, model, opt, loader))
    result["examples"] = loader.num_examples
    _, result["test_accuracy"] = gd.train.evaluate(model, gd.data.DataLoader(test, batch_size=EVAL_BATCH))
    return result


def run_torch(spec: dict) -> dict:
    try:
        import torch
    except ImportError as exc:
        raise Skip(f"torch does not import ({exc})") from None
    nn = torch.nn
    images, labels, test_images, test_labels = load_host(Path(spec["data_dir"]))
    images, labels = subset(images, labels, spec["subset"])
    torch.manual_seed(spec["seed"])
    model = nn.Sequential(
        nn.Unflatten(1, (1, 28)),
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    data, targets = torch.from_numpy(images), torch.from_numpy(labels).long()
    generator = torch.Generator().manual_seed(spec["seed"])
    n, batch = len(images), spec["batch_size"]

    def epoch():
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            loss = nn.functional.cross_entropy(model(data[idx].float().div_(255.0)), targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    result = timed_epochs(spec["epochs"], epoch)
    result.update(examples=n, torch=torch.__version__, torch_threads=torch.get_num_threads())
    model.eval()
    with torch.no_grad():
        test_x = torch.from_numpy(test_images).float().div_(255.0)
        predicted = torch.cat([model(chunk).argmax(dim=1) for chunk in test_x.split(EVAL_BATCH)])
    result["test_accuracy"] = float((predicted.numpy() == test_labels).mean())
    return result


RUNNERS = {"gdnet": run_gdnet, "torch": run_torch}


def worker(spec: dict) -> None:
    """Run one row and print its result as one marked JSON line."""
    try:
        result = RUNNERS[spec["kind"]](spec)
    except Skip as exc:
        result = {"skipped": str(exc)}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(RESULT_MARK + json.dumps(result), flush=True)


# -- the driver -------------------------------------------------------------------------------
def run_row(spec: dict, threads: int | None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    env = dict(os.environ)
    if threads:  # both libraries' thread pools (OpenBLAS for NumPy, OpenMP for PyTorch)
        env.update({name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    sys.stderr.write(done.stderr)
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"failed (exit {done.returncode}): {tail}"}


def run_all(specs: list[dict], args) -> tuple[list[list[dict]], int]:
    """Each row ``args.repeats`` times, interleaved (repeat r starts at row r); a run disturbed
    by other processes runs again, up to ``args.retries`` times. Returns the results per row
    and how many runs were thrown away."""
    results: list[list[dict]] = [[] for _ in specs]
    thrown_away = 0
    for r in range(args.repeats):
        for i in [(r + j) % len(specs) for j in range(len(specs))]:
            if results[i] and ("skipped" in results[i][0] or "error" in results[i][0]):
                continue
            print(f"[{r + 1}/{args.repeats}] {LABELS[specs[i]['kind']]}", file=sys.stderr, flush=True)
            for attempt in range(args.retries + 1):
                if args.quiet_wait > 0:
                    wait_for_quiet(args.quiet_wait)
                result = run_row(specs[i], args.threads)
                if attempt == args.retries or not disturbed(specs[i], result):
                    break
                thrown_away += 1
                print("  disturbed by other processes; running it again", file=sys.stderr, flush=True)
            results[i].append(result)
    return results, thrown_away


def table(specs: list[dict], results: list[list[dict]]) -> tuple[str, float | None, float]:
    """The markdown table, gdnet's ratio to PyTorch, and the most CPU other processes used."""
    head = ["row", "s/epoch (median)", "min-max", "examples/s", "peak RSS MB", "test acc", "gdnet ÷ row"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # undisturbed epochs only, where there are any (the MLP benchmark's rule)
    epochs = {s["kind"]: quiet_epochs(s, runs) for s, runs in zip(specs, results) if "epoch_times" in runs[0]}
    medians = {kind: statistics.median(times) for kind, (times, _, _) in epochs.items()}
    ratio = medians["gdnet"] / medians["torch"] if len(medians) == 2 else None
    load = 0.0
    for spec, runs in zip(specs, results):
        first = runs[0]
        if "epoch_times" not in first:
            note = f"skipped: {first['skipped']}" if "skipped" in first else first["error"]
            lines.append(f"| {LABELS[spec['kind']]} | {note} |" + " |" * (len(head) - 2))
            continue
        times, loads, _ = epochs[spec["kind"]]
        load = max([load] + loads)
        median = medians[spec["kind"]]
        mine = medians.get("gdnet")
        ratio_cell = "1.00 (reference)" if spec["kind"] == "gdnet" else (f"{mine / median:.2f}" if mine else "n/a")
        cells = [
            LABELS[spec["kind"]], f"{median:.1f}", f"{min(times):.1f}-{max(times):.1f}",
            f"{first['examples'] / median:,.0f}", f"{max(run['peak_rss_mb'] for run in runs):.0f}",
            f"{statistics.median(run['test_accuracy'] for run in runs):.4f}", ratio_cell,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), ratio, load


def footer(args, results: list[list[dict]], ratio: float | None, load: float, thrown_away: int) -> str:
    examples = args.subset or 60000
    torch_run = next((run for runs in results for run in runs if "torch_threads" in run), None)
    lines = [
        f"- {args.epochs} epoch(s) x {args.repeats} repeat(s) per row on {examples:,} training images, "
        f"batch {args.batch_size}, each run in its own process; epochs timed with the data gather, cast "
        "and scaling (a first epoch of 3 or more is a warm-up, not counted); test accuracy in evaluation "
        "mode on the 10,000 test images.",
        f"- other processes used at most {load:.2f} CPUs during a counted epoch "
        f"({'quiet' if load <= QUIET else 'disturbed: rerun on a quieter machine before trusting the ratio'}); "
        f"{thrown_away} disturbed run(s) were run again (--retries {args.retries}).",
    ]
    if ratio is not None:
        lines.append(f"- gdnet / PyTorch: {ratio:.2f} (target <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'})")
    if torch_run:
        lines.append(f"- torch {torch_run['torch']}, torch.get_num_threads() = {torch_run['torch_threads']}")
    threads = f"{args.threads} thread(s) per row (--threads)" if args.threads else "each library's default threads"
    lines.append(f"- {threads}")
    blas_env = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in BLAS_ENV)
    lines.append(f"- machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
                 f"Python {platform.python_version()}, {blas_name()}; environment of the driver: {blas_env}")
    return "\n".join(lines)


def profile(args) -> None:
    """cProfile of ``args.profile`` gdnet training steps, after 5 untimed ones."""
    import cProfile
    import itertools
    import pstats

    gd, model, opt, loader, _ = gdnet_setup(spec_for(args, "gdnet"))
    endless = itertools.chain.from_iterable(itertools.repeat(loader))
    gdnet_steps(gd, model, opt, itertools.islice(endless, 5))
    with cProfile.Profile() as profiler:
        gdnet_steps(gd, model, opt, itertools.islice(endless, args.profile))
    for order in ("tottime", "cumulative"):
        print(f"\n== {args.profile} gdnet steps, batch {args.batch_size}, by {order} ==")
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(25)


def spec_for(args, kind: str) -> dict:
    return {"kind": kind, "epochs": args.epochs, "seed": args.seed, "subset": args.subset,
            "batch_size": args.batch_size, "data_dir": str(args.data_dir)}


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--epochs", type=int, default=1, help="epochs per run (default 1)")
    add("--subset", type=int, default=None, metavar="N", help="train on the first N training images only")
    add("--repeats", type=int, default=1, help="runs of each row, interleaved (default 1)")
    add("--batch-size", type=int, default=128)
    add("--rows", default="gdnet,torch", help="comma-separated subset of gdnet,torch")
    add("--threads", type=int, default=None, metavar="T",
        help="run both rows with T threads (OpenBLAS and OpenMP); default: each library's own choice. "
        "T=1 compares the work done, and shrugs off other processes on a shared machine")
    add_run_flags(add, retries=1)
    args = parser.parse_args(argv)
    if args.worker is None:
        if args.epochs < 1 or args.repeats < 1 or args.retries < 0 or (
            args.subset is not None and args.subset < args.batch_size
        ):
            parser.error("--epochs and --repeats must be at least 1, --retries at least 0, --subset at least "
                         "the batch size")
        unknown = set(args.rows.split(",")) - set(RUNNERS)
        if unknown:
            parser.error(f"--rows: unknown {sorted(unknown)}; expected some of {sorted(RUNNERS)}")
        args.data_dir = data_dir(args.data_dir)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker is not None:
        worker(json.loads(args.worker))
        return 0
    if args.profile:
        profile(args)
        return 0
    specs = [spec_for(args, kind) for kind in RUNNERS if kind in args.rows.split(",")]
    results, thrown_away = run_all(specs, args)
    body, ratio, load = table(specs, results)
    text = f"## CPU: small CNN on Fashion-MNIST\n\n{body}\n\n{footer(args, results, ratio, load, thrown_away)}\n"
    publish(text, args.out)
    return 1 if any("error" in run for runs in results for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
