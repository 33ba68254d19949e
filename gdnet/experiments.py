"""``gdnet experiments``: the textbook tables of backpropagation with gradient descent, measured.

Each experiment trains small MLPs on Fashion-MNIST with plain SGD (no momentum), changing one
setting at a time, and writes ``<out>/<name>.md`` (a markdown table plus how to reproduce it)
and ``<out>/<name>.png`` (its curves). One spec per experiment; the training, measuring, table
and plot code is shared:

    gdnet experiments all --quick            # the small sizes CI runs
    gdnet experiments batch-size --out results --backend numpy --seed 0
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import math
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from . import data, optim, train
from ._backend import manual_seed, use_backend
from ._io import atomic_write
from ._version import __version__
from .autograd import namespace_of
from .backends import host
from .models import build_from_spec
from .nn import functional as F
from .nn import l1_penalty, l2_penalty
from .nn.layers import Sequential

# the settings every run starts from; a variant changes some of them
BASE = dict(hidden=(100,), activation="relu", init="he", lr=0.1, batch_size=100, penalty=None, strength=0.0,
            dropout=0.0, train_examples=None, repeat_to=None)


@dataclasses.dataclass(frozen=True)
class Size:
    """How big an experiment runs: examples to train and test on, epochs, the accuracy whose
    first epoch is reported, and per-variant overrides (a smaller set for batch size 1)."""

    train_examples: int
    test_examples: int
    epochs: int
    threshold: float
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


QUICK = Size(train_examples=2000, test_examples=1000, epochs=2, threshold=0.6)
FULL = Size(train_examples=60000, test_examples=10000, epochs=10, threshold=0.85)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One table: its variants (label -> settings changed from BASE), the columns to report and
    the plot to draw ("variants": loss and test accuracy per epoch for each variant; "gap":
    training and test error per epoch; "scaling": seconds against examples)."""

    name: str
    title: str
    question: str
    variants: dict[str, dict[str, Any]]
    columns: Sequence[str]
    plot: str = "variants"
    quick: Size = QUICK
    full: Size = FULL


# -- columns: name -> value from a finished run ---------------------------------------------


@dataclasses.dataclass
class Run:
    """What one variant measured."""

    label: str
    settings: dict[str, Any]
    history: train.History
    examples: int
    step_losses: list[float]
    threshold: float


def _epochs_to(run: Run) -> str:
    reached = [row["epoch"] for row in run.history if row["val_accuracy"] >= run.threshold]
    return str(reached[0]) if reached else f"> {len(run.history)}"


def _step_loss_std(run: Run) -> float:
    losses = run.step_losses
    if len(losses) < 2:
        return 0.0
    mean = sum(losses) / len(losses)
    return math.sqrt(sum((v - mean) ** 2 for v in losses) / (len(losses) - 1))


def _seconds(run: Run) -> float:
    return sum(run.history["seconds"]) / len(run.history)


COLUMNS: dict[str, tuple[str, Callable[[Run], Any]]] = {
    "examples": ("training examples", lambda r: f"{r.examples:,}"),
    "loss": ("training loss per epoch", lambda r: " → ".join(f"{v:.3f}" for v in r.history["loss"])),
    "rises": ("epochs the loss rose", lambda r: sum(b > a for a, b in zip(r.history["loss"], r.history["loss"][1:]))),
    "train_error": ("training error", lambda r: f"{1 - r.history['accuracy'][-1]:.2%}"),
    "test_error": ("test error", lambda r: f"{1 - r.history['val_accuracy'][-1]:.2%}"),
    "gap": ("gap (test - training error)",
            lambda r: f"{r.history['accuracy'][-1] - r.history['val_accuracy'][-1]:+.2%}"),
    "test_accuracy": ("test accuracy", lambda r: f"{r.history['val_accuracy'][-1]:.2%}"),
    "epochs_to": ("epochs to threshold", _epochs_to),
    "step_noise": ("step-loss std (last epoch)", lambda r: f"{_step_loss_std(r):.3f}"),
    "steps": ("steps per epoch", lambda r: len(r.step_losses)),
    "seconds": ("seconds per epoch", lambda r: f"{_seconds(r):.3f}"),
    "per_10k": ("seconds per 10,000 examples", lambda r: f"{_seconds(r) / r.examples * 10000:.4f}"),
    "throughput": ("examples per second", lambda r: f"{r.history['examples_per_second'][-1]:,.0f}"),
}


def _scaled(quick: Size, full: Size, quick_sizes: Sequence[int], full_sizes: Sequence[int]) -> tuple[Size, Size]:
    """Sizes for the scaling experiment: the variants' dataset sizes differ between quick and
    full runs, one epoch each."""
    def sized(size: Size, examples: Sequence[int]) -> Size:
        return dataclasses.replace(size, epochs=1, overrides={str(i): {"repeat_to": n} for i, n in enumerate(examples)})

    return sized(quick, quick_sizes), sized(full, full_sizes)


_SCALING_QUICK, _SCALING_FULL = _scaled(QUICK, FULL, (1000, 10000, 100000), (10000, 100000, 1000000))

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("activations", "Activation functions",
               "Which activation trains fastest and ends most accurate (784-100-10, lr 0.1, batch 100; Xavier init for "
               "sigmoid and tanh, He for ReLU)?",
               {"sigmoid": dict(activation="sigmoid", init="xavier"), "tanh": dict(activation="tanh", init="xavier"),
                "ReLU": dict(activation="relu", init="he")},
               ("loss", "epochs_to", "test_accuracy", "seconds")),
    Experiment("learning-rate", "Learning rate",
               "How fast does plain SGD converge, and does it overshoot (784-100-10 ReLU, batch 100)?",
               {"0.1": dict(lr=0.1), "0.01": dict(lr=0.01), "0.001": dict(lr=0.001)},
               ("loss", "rises", "epochs_to", "test_accuracy")),
    Experiment("batch-size", "Batch size: stochastic, mini-batch and full-batch gradient descent",
               "Noise of the steps, time per epoch and accuracy (784-100-10 ReLU, lr 0.1; the same number of epochs "
               "each, so the full batch takes one step per epoch).",
               {"1 (stochastic)": dict(batch_size=1), "10": dict(batch_size=10), "100": dict(batch_size=100),
                "full batch": dict(batch_size=None)},
               ("examples", "steps", "step_noise", "seconds", "loss", "test_accuracy"),
               quick=dataclasses.replace(QUICK, overrides={"1 (stochastic)": {"train_examples": 300}})),
    Experiment("generalisation", "Generalisation: training error against test error",
               "The gap between training and test error over the epochs (784-256-256-10 ReLU, lr 0.1, batch 100, "
               "no regularisation).",
               {"784-256-256-10": dict(hidden=(256, 256))},
               ("train_error", "test_error", "gap"), plot="gap"),
    Experiment("init", "Weight initialisation",
               "Accuracy and speed of convergence by initial weights (784-100-100-10 ReLU, lr 0.1, batch 100).",
               {"normal (std 0.01)": dict(init="normal", hidden=(100, 100)),
                "Xavier/Glorot": dict(init="xavier", hidden=(100, 100)), "He": dict(init="he", hidden=(100, 100))},
               ("loss", "epochs_to", "test_accuracy")),
    Experiment("depth", "Depth",
               "Training error with 1, 2 and 3 hidden layers of 100 (ReLU, He init, lr 0.1, batch 100).",
               {"1 hidden layer": dict(hidden=(100,)), "2 hidden layers": dict(hidden=(100, 100)),
                "3 hidden layers": dict(hidden=(100, 100, 100))},
               ("loss", "train_error", "test_error", "seconds")),
    Experiment("regularisation", "Regularisation",
               "Training and test error with no penalty, an L1 or L2 weight penalty, or dropout "
               "(784-256-256-10 ReLU, lr 0.1, batch 100).",
               {label: dict(hidden=(256, 256), **changes) for label, changes in (
                   ("none", {}), ("L1 (1e-5)", dict(penalty="l1", strength=1e-5)),
                   ("L2 (1e-4)", dict(penalty="l2", strength=1e-4)), ("dropout (0.2)", dict(dropout=0.2)))},
               ("train_error", "test_error", "gap", "test_accuracy")),
    Experiment("scaling", "Training time against dataset size",
               "Seconds for one epoch (784-100-10 ReLU, batch 100) as the training set grows; the larger sets repeat "
               "the 60,000 training images. Linear scaling keeps the seconds per 10,000 examples constant.",
               {"0": dict(), "1": dict(), "2": dict()},
               ("examples", "seconds", "per_10k", "throughput"), plot="scaling",
               quick=_SCALING_QUICK, full=_SCALING_FULL),
)}
NAMES = tuple(EXPERIMENTS)


# -- data -------------------------------------------------------------------------------------


def _first(dataset: data.ArrayDataset, n: int | None) -> data.ArrayDataset:
    if n is None or n >= len(dataset):
        return dataset
    return data.ArrayDataset(dataset.inputs[:n], dataset.targets[:n], classes=dataset.classes)


def _repeated(dataset: data.ArrayDataset, n: int) -> data.ArrayDataset:
    """``n`` examples: the dataset's, repeated (tiled on the host) as often as needed."""
    if n <= len(dataset):
        return _first(dataset, n)
    indices = host.asarray(range(n), "int64") % len(dataset)
    return data.ArrayDataset(host.take(dataset.inputs, indices), host.take(dataset.targets, indices),
                             classes=dataset.classes)


# -- training -----------------------------------------------------------------------------------


class _StepLosses(train.Callback):
    """Keeps every step's loss of the last epoch on the device; read once at the end."""

    def __init__(self) -> None:
        self.arrays: list[Any] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.arrays = []

    def on_batch_end(self, step: int, loss) -> None:
        self.arrays.append(loss.data)

    def values(self) -> list[float]:
        if not self.arrays:
            return []
        xp = namespace_of(self.arrays[0])
        return [float(v) for v in host.to_list(xp.stack([xp.reshape(a, ()) for a in self.arrays]))]


def build_model(settings: dict[str, Any]) -> Sequential:
    """The MLP ``gdnet train`` builds from the same settings (hidden, activation, init, dropout),
    with Dropout after each hidden activation when asked."""
    return build_from_spec(settings)


def _loss_for(model, settings: dict[str, Any]):
    penalty = {"l1": l1_penalty, "l2": l2_penalty, None: None}[settings["penalty"]]
    if penalty is None:
        return F.cross_entropy
    strength = settings["strength"]

    def penalised(scores, labels):
        return F.cross_entropy(scores, labels) + strength * penalty(model)

    return penalised


def variant_title(label: str, settings: dict[str, Any]) -> str:
    """How progress lines name a variant: its label, or for the scaling experiment (whose
    variants are numbered, their sizes differing between --quick and full runs) its size."""
    if settings["repeat_to"] is not None:
        return f"{settings['repeat_to']:,} examples"
    return label


def run_variant(label: str, settings: dict[str, Any], train_set: data.ArrayDataset, test_loader, size: Size,
                seed: int) -> Run:
    """Train one variant from ``seed`` with SGD for ``size.epochs`` epochs; test after each."""
    if settings["repeat_to"] is not None:
        train_set = _repeated(train_set, settings["repeat_to"])
    else:
        train_set = _first(train_set, settings["train_examples"] or size.train_examples)
    manual_seed(seed)
    batch_size = settings["batch_size"] or len(train_set)
    loader = data.DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    model = build_model(settings)
    optimizer = optim.SGD(model.parameters(), lr=settings["lr"])
    steps = _StepLosses()
    history = train.fit(model, _loss_for(model, settings), optimizer, loader, size.epochs, val_loader=test_loader,
                        callbacks=[steps], verbose=0)
    return Run(label, settings, history, len(train_set), steps.values(), size.threshold)


# -- writing ------------------------------------------------------------------------------------


def _versions() -> str:
    try:
        numpy_version = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        numpy_version = "not installed"
    return f"gdnet {__version__}, numpy {numpy_version}"


def markdown_table(experiment: Experiment, runs: Sequence[Run], size: Size, backend: str, seed: int,
                   quick: bool) -> str:
    """The experiment's table, with what it measured and how to run it again."""
    if experiment.plot == "gap":
        header = ["epoch", "training loss", "training error", "test error", "gap (test - training error)"]
        history = runs[0].history
        body = [[str(row["epoch"]), f"{row['loss']:.4f}", f"{1 - row['accuracy']:.2%}",
                 f"{1 - row['val_accuracy']:.2%}", f"{row['accuracy'] - row['val_accuracy']:+.2%}"] for row in history]
    else:
        header = ["variant", *(COLUMNS[c][0] for c in experiment.columns)]
        body = [[run.label, *(str(COLUMNS[c][1](run)) for c in experiment.columns)] for run in runs]
        if experiment.plot == "scaling":
            header, body = header[1:], [cells[1:] for cells in body]
    flags = f"{' --quick' if quick else ''} --backend {backend.split()[0]} --seed {seed}"
    command = f"gdnet experiments {experiment.name}{flags}"
    lines = [f"## {experiment.title}", "", experiment.question, "",
             "| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
             *("| " + " | ".join(cells) + " |" for cells in body), "",
             f"- data: Fashion-MNIST, {size.train_examples:,} training examples (unless the table says otherwise), "
             f"{size.test_examples:,} test examples",
             f"- training: {size.epochs} epoch(s) of plain SGD (no momentum), cross-entropy, seed {seed}"
             + (f"; 'epochs to threshold' is the first epoch with {size.threshold:.0%} test accuracy"
                if "epochs_to" in experiment.columns else ""),
             f"- backend and device: {backend}; {_versions()}; "
             f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             f"- reproduce: `{command}`", ""]
    return "\n".join(lines)


def _plot(experiment: Experiment, runs: Sequence[Run], path: Path) -> None:
    """The experiment's curves as a PNG (matplotlib's Agg canvas; nothing global changes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if experiment.plot == "scaling":
        panels = [("one epoch", "training examples", "seconds",
                   {"measured": ([r.examples for r in runs], [_seconds(r) for r in runs])})]
    elif experiment.plot == "gap":
        history = runs[0].history
        panels = [("error", "epoch", "error",
                   {"training": (history["epoch"], [1 - a for a in history["accuracy"]]),
                    "test": (history["epoch"], [1 - a for a in history["val_accuracy"]])})]
    else:
        panels = [("training loss", "epoch", "loss", {r.label: (r.history["epoch"], r.history["loss"]) for r in runs}),
                  ("test accuracy", "epoch", "accuracy",
                   {r.label: (r.history["epoch"], r.history["val_accuracy"]) for r in runs})]
    figure = Figure(figsize=(4.5 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, (title, xlabel, ylabel, curves) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for label, (xs, ys) in curves.items():
            axes.plot(xs, ys, marker="o", label=label)
        axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if xlabel == "epoch":
            axes.xaxis.get_major_locator().set_params(integer=True)  # no epoch 1.5
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(experiment.title)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    atomic_write(path, [image.getvalue()])


def run_experiment(name: str, out: str | Path = "experiments", quick: bool = False, backend: str = "auto",
                   seed: int = 0, data_root: str | None = None, log=None) -> dict[str, Any]:
    """Run one experiment and write ``<out>/<name>.md`` and ``<out>/<name>.png``.

    Returns {"markdown": path, "plot": path, "runs": [Run, ...]}; the plot path is None where
    matplotlib is missing.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of: {', '.join(NAMES)}, all")
    experiment = EXPERIMENTS[name]
    size = experiment.quick if quick else experiment.full
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out={str(out)!r} is a file; expected a folder for {name}.md and {name}.png "
                                 "(created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    with use_backend(backend) as active:
        train_set, test_set = data.datasets.fashion_mnist(root=data_root)
        test_loader = data.DataLoader(_first(test_set, size.test_examples), batch_size=1000)
        runs = []
        for label, changes in experiment.variants.items():
            settings = {**BASE, **changes, **size.overrides.get(label, {})}
            started = time.perf_counter()
            runs.append(run_variant(label, settings, train_set, test_loader, size, seed))
            if log is not None:
                training = sum(runs[-1].history["seconds"])
                print(f"{name}: {variant_title(label, settings)} done in {time.perf_counter() - started:.1f} s "
                      f"(training {training:.3f} s of it, {_seconds(runs[-1]):.3f} s per epoch; the rest builds the "
                      "data and model and tests)", file=log, flush=True)
        described = active.describe()
    markdown = out / f"{name}.md"
    atomic_write(markdown, [markdown_table(experiment, runs, size, described, seed, quick).encode("utf-8")])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = None
    else:
        plot = out / f"{name}.png"
        _plot(experiment, runs, plot)
    return {"markdown": markdown, "plot": plot, "runs": runs}


def run_experiments(names: str | Sequence[str], out: str | Path = "experiments", quick: bool = False,
                    backend: str = "auto", seed: int = 0, data_root: str | None = None, log=None) -> list[dict]:
    """``run_experiment`` for each name ("all": every experiment, in table order)."""
    if isinstance(names, str):
        names = NAMES if names == "all" else (names,)
    return [run_experiment(name, out, quick, backend, seed, data_root, log) for name in names]
