"""The ``gdnet`` command.

    gdnet train --dataset fashion-mnist --hidden 100 --epochs 10 --backend auto
    gdnet info
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import distributed, optim, train
from ._backend import (
    ENVIRONMENT_VARIABLE,
    available_backends,
    get_backend,
    manual_seed,
    use_backend,
    use_backend_from_environment,
)
from ._version import __version__
from .data.datasets import SOURCES
from .models import build_from_spec, describe_network, spec_shapes
from .nn.activations import ACTIVATIONS
from .nn.init import SCHEMES
from .nn.normalization import SyncBatchNorm
from .nn.parallel import DistributedDataParallel
from .nn.regularization import l1_penalty, l2_penalty
from .train import evaluate

DATASETS = tuple(SOURCES)  # the datasets gdnet.data knows how to find and download
# the network settings a checkpoint's description may leave out (written before they existed)
NETWORK_DEFAULTS: dict[str, Any] = {"conv": [], "dropout": 0.0}
# the settings of a `gdnet train` run beyond its network and optimizer, recorded in its checkpoints
# (extra["run"]) so that --resume can check them: the batch (the step count), the loss's
# penalties, the seed and the training examples
RUN_FLAGS = ("batch_size", "l1", "l2", "seed", "train_subset")
DEFAULT_SEED = 0  # --seed of a new run; a resumed one takes its checkpoint's


def model_spec(args: argparse.Namespace) -> dict[str, Any]:
    """What a checkpoint needs to rebuild the model of a ``gdnet train`` run."""
    return dict(dataset=args.dataset, hidden=list(args.hidden), activation=args.activation, init=args.init,
                dropout=args.dropout, conv=list(args.conv))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_spec(spec: Any, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """CheckpointError unless ``spec`` (a checkpoint's network description) is one
    ``build_from_spec`` takes and gives the parameter ``shapes`` the checkpoint stores; checked
    before anything is built, so a description of a huge network costs nothing."""
    from .train import CheckpointError

    problems = []
    if not isinstance(spec, dict):
        raise CheckpointError(f"{source}: its network description is a {type(spec).__name__}; expected a dict")
    fields = {
        "dataset": (lambda v: v in DATASETS, f"one of {list(DATASETS)}"),
        "hidden": (lambda v: isinstance(v, list) and all(map(_is_count, v)), "a list of positive ints"),
        "conv": (lambda v: isinstance(v, list) and all(map(_is_count, v)), "a list of positive ints"),
        "activation": (lambda v: isinstance(v, str) and v in ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}"),
        "init": (lambda v: isinstance(v, str) and v in ("default", *SCHEMES), f"one of {['default', *SCHEMES]}"),
        "dropout": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
                    "a number in [0, 1)"),
    }
    optional = NETWORK_DEFAULTS
    for name, (valid, expected) in fields.items():
        if name not in spec and name in optional:
            continue
        if name not in spec:
            problems.append(f"no {name!r}")
        elif not valid(spec[name]):
            problems.append(f"{name} is {spec[name]!r}; expected {expected}")
    if problems:
        raise CheckpointError(f"{source}: its network description is not one gdnet train writes: "
                              + "; ".join(problems))
    expected = spec_shapes(spec)
    if expected != shapes:
        differences = [f"{name!r} is {shapes.get(name)} in the file and {shape} in the description"
                       for name, shape in expected.items() if shapes.get(name) != shape]
        differences += [f"{name!r} is in the file only" for name in shapes if name not in expected]
        raise CheckpointError(f"{source}: its network description ({describe_network(spec)}) does not match the "
                              "tensors it stores: " + "; ".join(differences[:5])
                              + (f"; and {len(differences) - 5} more" if len(differences) > 5 else ""))


# the command's own defaults where they differ from the optimizer's: SGD with momentum 0.9
COMMAND_DEFAULTS = {"sgd": {"momentum": 0.9}}
# the flags an optimizer takes where its constructor has the argument: name -> value when not given
OPTIMIZER_FLAGS = {"weight_decay": 0.0, "momentum": None, "nesterov": False}


def optimizer_settings(args: argparse.Namespace) -> tuple[type, dict[str, Any]]:
    """The class ``--optimizer`` names (any that gdnet.optim exports) and its settings: --lr and,
    where its constructor takes them, --weight-decay, --momentum and --nesterov.

    Raises:
        ValueError: a flag given to an optimizer that takes no such setting.
    """
    cls = optim.optimizers()[args.optimizer]
    takes = inspect.signature(cls).parameters
    settings = {"lr": args.lr}
    for name, unset in OPTIMIZER_FLAGS.items():
        value = getattr(args, name)
        if value == unset:  # not given: the command's default, else the optimizer's own
            value = COMMAND_DEFAULTS.get(args.optimizer, {}).get(name, unset)
            if value is None or name not in takes:
                continue
        elif name not in takes:
            raise ValueError(f"--{name.replace('_', '-')} {value}: {cls.__name__} takes no {name}")
        settings[name] = value
    return cls, settings


def make_optimizer(args: argparse.Namespace, params):
    """The optimizer of ``optimizer_settings(args)`` over ``params``."""
    cls, settings = optimizer_settings(args)
    return cls(params, **settings)


def _flag(name: str, value: Any) -> str:
    """How a setting is spelled on the command line: "--lr 0.05", "--nesterov", "no --nesterov"."""
    flag = "--" + name.replace("_", "-")
    if value is None:
        return f"no {flag}"
    if isinstance(value, bool):
        return flag if value else f"no {flag}"
    if isinstance(value, (list, tuple)):
        return f"{flag} {' '.join(map(str, value))}" if value else f"no {flag}"
    return f"{flag} {value}"


def network_flags(spec: dict[str, Any]) -> str:
    """The ``gdnet train`` flags that build the network ``spec`` describes, those at their
    default left out: "--dataset mnist --hidden 64 32 --activation tanh --init he"."""
    return " ".join(_flag(name, spec[name]) for name in ("dataset", "conv", "hidden", "activation", "init", "dropout")
                    if name in spec and spec[name] != NETWORK_DEFAULTS.get(name, object()))


def _checkpoint_run(checkpoint) -> dict[str, Any]:
    """The optimizer, its settings and the schedule of the run a ``gdnet train`` checkpoint
    saved, read from its optimizer and scheduler states (so files written before the command
    recorded its flags are read the same way)."""
    from .train import CheckpointError

    state, schedule = checkpoint.optimizer_state, checkpoint.scheduler_state
    if not isinstance(state, dict) or not state.get("param_groups"):
        raise CheckpointError(f"{checkpoint.path} holds no optimizer state; --resume needs a checkpoint "
                              "`gdnet train --checkpoint-dir` wrote")
    names = {cls.__name__: name for name, cls in optim.optimizers().items()}
    group = state["param_groups"][0]
    run = {"optimizer": names.get(state.get("type"), state.get("type")),
           "lr": group.get("initial_lr", group.get("lr"))}  # a schedule keeps the run's rate as initial_lr
    run.update({name: group[name] for name in OPTIMIZER_FLAGS if name in group})
    kind = schedule.get("type") if isinstance(schedule, dict) else None
    run["schedule"] = {None: "constant", "CosineAnnealingLR": "cosine"}.get(kind, kind)
    if run["schedule"] == "cosine":
        run["epochs"] = schedule.get("T_max")
    return run


def run_record(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of RUN_FLAGS a ``gdnet train`` checkpoint records beside its network."""
    return {name: getattr(args, name) for name in RUN_FLAGS}


def checkpoint_seed(checkpoint) -> int | None:
    """The seed of the run ``checkpoint`` saved: the one it records, else its loader's."""
    recorded = checkpoint.extra.get("run")
    if isinstance(recorded, dict) and "seed" in recorded:
        return recorded["seed"]
    loader = checkpoint.loader_state
    return loader.get("seed") if isinstance(loader, dict) else None


def check_resume(args: argparse.Namespace, checkpoint) -> list[str]:
    """ValueError unless ``args`` continue the run ``checkpoint`` saved: the same network, the
    same optimizer with the same settings, the same schedule, and for a schedule over the
    whole run (cosine) the same --epochs; the same --batch-size, --l1, --l2 and --subset, and
    --seed where given. A longer constant-rate run is a continuation.

    Returns the flags the checkpoint does not record (one written before ``gdnet train``
    recorded them), taken as given: --batch-size, --l1, --l2 cannot be read from its states.
    """
    path = checkpoint.path
    network = checkpoint.extra.get("network")
    spec = model_spec(args)
    if isinstance(network, dict):
        differ = [name for name in ("dataset", "conv", "hidden", "activation", "init", "dropout")
                  if spec[name] != network.get(name, NETWORK_DEFAULTS.get(name, object()))]
        if differ:
            changes = "; ".join(f"{_flag(name, spec[name])} where the checkpoint has "
                                f"{_flag(name, network.get(name, NETWORK_DEFAULTS.get(name)))}" for name in differ)
            raise ValueError(f"--resume: {path} holds the network {describe_network(network)}, trained with "
                             f"{network_flags(network)}; this command asks for {describe_network(spec)}: {changes}. "
                             "The network flags must match the checkpoint's: pass those, or start a new run with "
                             "another --checkpoint-dir")
    run = _checkpoint_run(checkpoint)
    cls, settings = optimizer_settings(args)
    defaults = inspect.signature(cls).parameters
    mine: dict[str, Any] = {"optimizer": args.optimizer}
    if run["optimizer"] == args.optimizer:
        mine.update({name: settings.get(name, defaults[name].default)
                     for name in ("lr", *OPTIMIZER_FLAGS) if name in run and name in defaults})
    mine["schedule"] = args.schedule
    if args.schedule == "cosine" and run["schedule"] == "cosine":
        mine["epochs"] = args.epochs
    mine.update({name: getattr(args, name) for name in RUN_FLAGS if name != "seed" or args.seed is not None})
    recorded = checkpoint.extra.get("run")
    run.update({name: recorded[name] for name in RUN_FLAGS if name in recorded} if isinstance(recorded, dict) else {})
    run.setdefault("seed", checkpoint_seed(checkpoint))
    loader = checkpoint.loader_state if isinstance(checkpoint.loader_state, dict) else {}
    if args.train_subset and "train_subset" not in run and isinstance(loader.get("num_examples"), int):
        run["train_subset"] = loader["num_examples"]  # the examples its loader had: the subset, if one was taken
    differ = [name for name in mine if name in run and mine[name] != run[name]]
    if differ:
        longer = args.epochs > (run.get("epochs") or 0)
        because = {"epochs": " (a cosine schedule anneals to 0 over the run's --epochs: a "
                             f"{'longer' if longer else 'shorter'} run is a new run)",
                   "batch_size": " (the steps of an epoch)", "train_subset": " (the training examples)",
                   "seed": " (the order of the examples)", "l1": " (the loss)", "l2": " (the loss)"}
        flag = {"train_subset": "subset"}
        changes = "; ".join(f"{_flag(flag.get(name, name), mine[name])} where the checkpoint's run has "
                            f"{_flag(flag.get(name, name), run[name])}" + because.get(name, "") for name in differ)
        raise ValueError(f"--resume continues the run saved in {path} with its optimizer, learning rate, schedule, "
                         f"batch size, loss, seed and training examples: {changes}. Pass the checkpoint's "
                         f"{'value' if len(differ) == 1 else 'values'} to continue it, or start a new run "
                         "with another --checkpoint-dir")
    return [_flag(name, getattr(args, name)) for name in ("batch_size", "l1", "l2") if name not in run]


def _load_datasets(args: argparse.Namespace):
    from . import data

    return data.datasets.load_mnist_family(args.dataset, root=args.data_root, download=args.download)


def _use_backend(args: argparse.Namespace):
    """``--backend`` (and ``--device``) for the block; without --backend, GDNET_BACKEND's choice,
    else "auto"."""
    device = getattr(args, "device", None)  # `gdnet experiments` has no --device
    if args.backend is None:
        return use_backend_from_environment("auto", device)
    return use_backend(args.backend, device)


def check_folder(what: str, folder: str | os.PathLike, created: bool = True) -> None:
    """ValueError unless files can be written in ``folder`` (``what`` names the flag in the
    message): an existing, writable directory, or where ``created`` one that can be made (its
    nearest existing parent is). Writability is tried by making and removing a temporary
    file, since os.access says yes to root on read-only file systems such as /proc."""
    import tempfile

    folder = Path(folder).absolute()
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if existing != folder and not created:
        raise ValueError(f"{what}: the folder {str(folder)!r} does not exist; expected an existing folder (create it "
                         "first) or the --checkpoint-dir")
    if not existing.is_dir():
        raise ValueError(f"{what}: {str(existing)!r} is a file, not a folder; expected "
                         + ("a folder" if existing == folder else f"a folder to hold {str(folder)!r}"))
    try:
        handle, name = tempfile.mkstemp(dir=existing, prefix=".gdnet-write-check-")
        os.close(handle)
        os.remove(name)
    except OSError as exc:
        raise ValueError(f"{what}: the folder {str(existing)!r} cannot be written ({exc.strerror or exc}); expected a "
                         "folder this user can write files in") from exc


def _check_plot(path: str | None, checkpoint_dir: str | None = None) -> None:
    """Fail before training, not after it, where --plot cannot be drawn: matplotlib missing,
    a format it cannot write (the suffix names it; none is PNG), or a folder that does not
    exist (unless it is --checkpoint-dir or above it, which training creates) or cannot be
    written."""
    if path is None:
        return
    if not path.strip():
        raise ValueError(f"--plot {path!r}: an empty name; expected the name of an image file, e.g. curves.png")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ValueError(f"--plot {path} needs matplotlib, which cannot be imported here ({exc}); install it "
                         "(`pip install -e '.[plot]'` in the gdnet checkout, or `pip install matplotlib`) or leave "
                         "out --plot") from exc
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()  # the canvas History.plot draws on
    suffix = Path(path).suffix[1:].lower()
    if Path(path).is_dir():
        raise ValueError(f"--plot {path} is a folder; expected the name of an image file in it, e.g. "
                         f"{Path(path) / 'curves.png'}")
    if suffix and suffix not in formats:
        names = ", ".join("." + name for name in sorted(formats))
        raise ValueError(f"--plot {path}: matplotlib cannot write the format {suffix!r}; expected a file name "
                         f"ending in one of {names} (or no suffix, for PNG)")
    folder = Path(path).absolute().parent
    created = Path(checkpoint_dir).absolute() if checkpoint_dir else None
    check_folder(f"--plot {path}", folder, created is not None and (folder == created or folder in created.parents))


def _seconds(seconds: float) -> str:
    """An epoch's time for its line: "0.5 s" from a tenth of a second up, else milliseconds
    ("41.7 ms"), so the epochs of a small run do not print 0.0 s."""
    return f"{seconds:.1f} s" if seconds >= 0.095 else f"{seconds * 1e3:.3g} ms"


class _EpochPrinter(train.Callback):
    """One line per epoch (loss, training and test accuracy, seconds), kept as a list too."""

    def __init__(self, epochs: int, out):
        self.epochs, self.out, self.rows = epochs, out, []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        row = dict(epoch=epoch, loss=logs["loss"], train_accuracy=logs["accuracy"], test_loss=logs["val_loss"],
                   test_accuracy=logs["val_accuracy"], seconds=logs["seconds"])
        self.rows.append(row)
        print(f"epoch {epoch:>3}/{self.epochs}  loss {row['loss']:.4f}  train acc {row['train_accuracy']:.2%}  "
              f"test acc {row['test_accuracy']:.2%}  {_seconds(row['seconds'])}", file=self.out, flush=True)


@contextlib.contextmanager
def _process_group() -> Iterator[int]:
    """The gdnet.distributed job (a world of one process without a launcher): joined here
    unless the caller already did, and left at the end, except after an error in a job of
    several ranks, which main() then aborts as a whole."""
    joined = not distributed.is_initialized()
    if joined:
        distributed.init_process_group()
    finished = False
    try:
        yield distributed.get_world_size()
        finished = True
    finally:
        if joined and (finished or distributed.world_size() == 1):
            distributed.destroy_process_group()


def run_training(args: argparse.Namespace, out=None) -> dict[str, Any]:
    """Train an MLP as ``gdnet train`` describes (with ``gd.train.fit``); print one line per epoch
    (to ``out``, default the current sys.stdout); checkpoint, resume and plot when asked; return
    the figures.

    Under an MPI launcher (``mpiexec -n N gdnet train ...``) the N processes train one model:
    DistributedDataParallel (BatchNorm synchronised), each rank a shard of every epoch with
    ``--batch-size`` examples per step, the test set sharded too, metrics over every rank;
    only rank 0 prints and writes files. ``--resume`` restores every rank from the checkpoint.
    """
    from . import data
    from .nn import functional as F

    out = sys.stdout if out is None else out
    if args.resume and not args.checkpoint_dir:
        raise ValueError("--resume needs --checkpoint-dir (the folder whose last.safetensors to continue from)")
    if args.checkpoint_dir is not None:
        check_folder(f"--checkpoint-dir {args.checkpoint_dir}", args.checkpoint_dir)
    _check_plot(args.plot, args.checkpoint_dir)
    last, unchecked, seed = None, [], 0
    if args.resume:
        last = Path(args.checkpoint_dir) / "last.safetensors"
        if not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}; train once with --checkpoint-dir")
        saved = train.load(last)
        unchecked = check_resume(args, saved)  # before any data is read
        seed = checkpoint_seed(saved)
    if args.seed is None:  # a resumed run's order is its checkpoint's: the seed of its loader
        args.seed = seed if seed is not None else DEFAULT_SEED
    with _use_backend(args), _process_group() as world:
        backend = get_backend()  # on GPUs, init_process_group picked this rank's device
        out = out if distributed.is_main_process() else io.StringIO()
        manual_seed(args.seed)
        train_set, test_set = _load_datasets(args)
        if args.train_subset:
            n = args.train_subset
            if n > len(train_set):  # a slice would take fewer without a word
                raise ValueError(f"--train-subset {n}: the training set has {len(train_set):,} examples; expected at "
                                 f"most {len(train_set):,}")
            train_set = data.ArrayDataset(train_set.inputs[:n], train_set.targets[:n], classes=train_set.classes)
        train_loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed,
                                       distributed=world > 1)
        # unpadded: every test image counts once over the ranks
        test_loader = data.DataLoader(test_set, batch_size=1000, distributed=world > 1, pad=False)
        spec = model_spec(args)
        model = build_from_spec(spec)
        if world > 1:
            model = SyncBatchNorm.convert_sync_batchnorm(model)
        optimizer = make_optimizer(args, model.parameters())
        schedule = None
        if args.schedule == "cosine":
            schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
        printer = _EpochPrinter(args.epochs, out)
        callbacks: list[Any] = [printer]
        initial_epoch = 0
        if args.checkpoint_dir:
            callbacks.append(train.ModelCheckpoint(args.checkpoint_dir, monitor="val_accuracy",
                                                   extra={"network": spec, "run": run_record(args)}))
        if last is not None:
            resumed = train.load_into(last, model, optimizer, schedule, train_loader)
            initial_epoch = resumed.epoch or 0
            if initial_epoch >= args.epochs:
                return _already_trained(resumed, args, model, out)
        print(_header(args, spec, optimizer, backend, world, initial_epoch), file=out)
        if last is not None:
            print(f"resumed from {last} after epoch {initial_epoch}", file=out)
        if unchecked:
            print(f"note: {last} does not record {', '.join(unchecked)} (written before gdnet train recorded "
                  "them): taken as given, unchecked", file=out)
        def loss(scores, labels):
            value = F.cross_entropy(scores, labels)
            if args.l1:
                value = value + args.l1 * l1_penalty(model)
            if args.l2:
                value = value + args.l2 * l2_penalty(model)
            return value

        trained = DistributedDataParallel(model) if world > 1 else model
        # the printer writes a line per epoch: fit adds only its bar, and only on a terminal
        bar = not args.quiet and getattr(sys.stderr, "isatty", lambda: False)()
        try:
            history = train.fit(trained, loss, optimizer, train_loader, args.epochs, val_loader=test_loader,
                                callbacks=callbacks, scheduler=schedule, verbose=1 if bar else 0,
                                initial_epoch=initial_epoch)
        except KeyboardInterrupt:
            raise Interrupted(_interruption(args, initial_epoch + len(printer.rows) + 1)) from None
        if args.plot and distributed.is_main_process():
            history.plot(args.plot)
            print(f"curves: {args.plot}", file=out)
        rows = printer.rows
        final = rows[-1]["test_accuracy"] if rows else float("nan")
        print(f"test accuracy: {final:.2%}", file=out)
        return {"history": rows, "test_accuracy": final, "model": model}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``gdnet train``'s epochs, with the line that says where the run stands."""


def _interruption(args: argparse.Namespace, epoch: int) -> str:
    """Where an interrupted run stands: its epoch, and the checkpoint --resume continues from."""
    if not args.checkpoint_dir:
        return f"interrupted in epoch {epoch}"
    last = Path(args.checkpoint_dir) / "last.safetensors"
    try:
        saved = train.load(last).epoch if last.is_file() else None
    except (OSError, train.CheckpointError):
        saved = None
    if saved is None:
        return f"interrupted in epoch {epoch}; no checkpoint in {args.checkpoint_dir} yet"
    return (f"interrupted in epoch {epoch}; the last checkpoint is epoch {saved} in {args.checkpoint_dir}: "
            "continue with --resume")


def _header(args: argparse.Namespace, spec: dict[str, Any], optimizer, backend, world: int, epoch: int) -> str:
    """The run in one line: data, network, the optimizer with the learning rate the next epoch
    uses (a resumed cosine run's is below --lr) and every setting that is not off."""
    group = optimizer.param_groups[0]
    rate = f"lr {group['lr']:g}"
    if args.schedule == "cosine":
        start = f"from {args.lr:g} " if epoch else ""
        rate += f" (cosine {start}to 0 over {args.epochs} epochs)"
    else:
        rate += f" ({args.schedule})"
    settings = [f"{name.replace('_', ' ')} {group[name]:g}" for name in ("momentum", "weight_decay")
                if group.get(name)]
    settings += ["nesterov"] if group.get("nesterov") else []
    settings += [f"{name.upper()} {getattr(args, name):g}" for name in ("l1", "l2") if getattr(args, name)]
    network = f"{args.activation}, init {args.init}" + (f", dropout {args.dropout:g}" if args.dropout else "")
    subset = f", the first {args.train_subset:,} training examples" if args.train_subset else ""
    return (f"gdnet {__version__}: {args.dataset}, {describe_network(spec)} ({network}), {args.optimizer} {rate}"
            + "".join(f", {setting}" for setting in settings)
            + f", batch {args.batch_size}{subset}, {backend.describe()}, "
            f"seed {DEFAULT_SEED if args.seed is None else args.seed}"
            + (f", {world} processes (batch {args.batch_size} each)" if world > 1 else ""))


def _already_trained(checkpoint, args: argparse.Namespace, model, out) -> dict[str, Any]:
    """``--resume`` of a run that has done --epochs epochs already: say so, with the test
    accuracy its checkpoint recorded, and train nothing."""
    accuracy = checkpoint.extra.get("metrics", {}).get("val_accuracy", float("nan"))
    if args.schedule == "cosine":  # its rate is 0 now: more epochs would be a new run
        advice = ("its cosine schedule has annealed to 0 over those epochs; to train longer, start a new run (with "
                  "another --checkpoint-dir) with a larger --epochs")
    else:
        advice = "pass a larger --epochs to continue"
    print(f"{checkpoint.path} is already trained for {checkpoint.epoch} epochs (--epochs {args.epochs}): nothing "
          f"to train; {advice}", file=out)
    if args.plot:
        print(f"no plot written to {args.plot}: --plot draws the epochs this command trains", file=out)
    print(f"test accuracy: {accuracy:.2%} (epoch {checkpoint.epoch}, from the checkpoint)", file=out)
    return {"history": [], "test_accuracy": accuracy, "model": model}


def run_evaluation(args: argparse.Namespace, out=None) -> tuple[float, float]:
    """``gdnet eval CHECKPOINT``: rebuild the MLP a ``gdnet train`` checkpoint describes, load its
    weights, and print its test loss and accuracy (to ``out``, default the current sys.stdout)."""
    from . import data

    if Path(args.checkpoint).is_dir():
        found = [str(Path(args.checkpoint) / name) for name in ("best.safetensors", "last.safetensors")
                 if (Path(args.checkpoint) / name).is_file()]
        raise ValueError(f"{args.checkpoint} is a folder; expected a checkpoint file"
                         + (f", e.g. {' or '.join(found)}" if found else
                            " (the best.safetensors or last.safetensors that `gdnet train --checkpoint-dir` writes)"))
    checkpoint = train.load(args.checkpoint)
    spec = checkpoint.extra.get("network")
    if spec is None:
        raise ValueError(f"{args.checkpoint} was not written by `gdnet train --checkpoint-dir` (its metadata has no "
                         "'network' description, so the command cannot rebuild its model); a checkpoint of "
                         "ModelCheckpoint or gd.train.save is evaluated in Python: build the model it came from, "
                         "load it with gd.train.load_into(path, model) and call gd.train.evaluate")
    check_spec(spec, {name: shape for name, shape, _ in checkpoint.architecture}, args.checkpoint)
    with _use_backend(args):
        model = build_from_spec(spec)
        model.load_state_dict(checkpoint.model_state)
        args.dataset = args.dataset or spec["dataset"]
        _, test_set = _load_datasets(args)
        loss, accuracy = evaluate(model, data.DataLoader(test_set, batch_size=1000))
    print(f"{args.checkpoint}: epoch {checkpoint.epoch}, {args.dataset} test loss {loss:.4f}, "
          f"test accuracy {accuracy:.2%}", file=sys.stdout if out is None else out)
    return loss, accuracy


# argparse types, shared with the example scripts (examples/common.py): each names the value it
# refused and what it expects, and exits with status 2 through argparse
def integer(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (text that is not one is refused the same way)."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {text}")
        return value

    return whole


def real(low: float, *, above: bool = False, below: float | None = None,
         high: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``low`` (> ``low`` where ``above``), and < ``below``
    or <= ``high`` where given (nan and inf are refused: a learning rate of inf trains to nan)."""
    opening = "(" if above else "["
    if below is not None:
        wanted = f"in {opening}{low:g}, {below:g})"
    elif high is not None:
        wanted = f"in {opening}{low:g}, {high:g}]"
    else:
        wanted = f"{'>' if above else '>='} {low:g}"

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if above else value >= low)
                and (below is None or value < below) and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"expected a finite number {wanted}; got {text}")
        return value

    return number


_POSITIVE = real(0.0, above=True)
_NON_NEGATIVE = real(0.0)
_FRACTION = real(0.0, below=1.0)


_BACKEND_HELP = "auto (cupy, then torch on CUDA or MPS, else numpy) or a backend (default: $GDNET_BACKEND, else auto)"
_DOWNLOAD_HELP = "fetch the dataset (checking its MD5 sums) into the user cache, or DATA_ROOT, where it is missing"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdnet", description="Backpropagation and gradient descent on any array library.")
    parser.add_argument("--version", action="version", version=f"gdnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train_command = commands.add_parser(
        "train", help="train an MLP classifier and print test accuracy",
        description="Train an MLP (or, with --conv, a CNN) classifier and print test accuracy.",
        epilog="On N processes (one machine or several): mpiexec -n N gdnet train ... "
               "(pip install -e '.[distributed]' in the gdnet checkout brings mpi4py and Open MPI's mpiexec; "
               "as root add --allow-run-as-root, and --oversubscribe for more processes than cores). The processes "
               "train one model data-parallel: --batch-size is per process (the global batch is N times it), only "
               "rank 0 prints and writes checkpoints, --resume restores every process.")
    train_command.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    train_command.add_argument("--data-root", default=None,
                       help="folder with the IDX files (default: GDNET_DATA, the user cache, /usr/share/datasets)")
    train_command.add_argument("--hidden", type=integer(1), nargs="+", default=[100],
                               help="hidden layer sizes, e.g. --hidden 256 128 (default: 100)")
    train_command.add_argument("--conv", type=integer(1), nargs="*", default=[],
                               help="channels of conv blocks before the dense layers (a CNN), e.g. --conv 32 64")
    train_command.add_argument("--dropout", type=_FRACTION, default=0.0, help="dropout after each hidden layer")
    train_command.add_argument("--l1", type=_NON_NEGATIVE, default=0.0, help="L1 penalty coefficient on the weights")
    train_command.add_argument("--l2", type=_NON_NEGATIVE, default=0.0, help="L2 penalty coefficient on the weights")
    train_command.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    train_command.add_argument("--init", choices=["default", *SCHEMES], default="he")
    train_command.add_argument("--optimizer", choices=list(optim.optimizers()), default="sgd",
                               help="(default: %(default)s)")
    train_command.add_argument("--lr", type=_POSITIVE, default=0.05, help="learning rate (default: %(default)s)")
    train_command.add_argument("--momentum", type=_FRACTION, default=None,
                               help="for the optimizers that take one: SGD's (default 0.9 here), RMSprop's (default 0)")
    train_command.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                       help="learning rate per epoch: constant, or cosine annealing to 0 over the epochs")
    train_command.add_argument("--nesterov", action="store_true")
    train_command.add_argument("--weight-decay", type=_NON_NEGATIVE, default=0.0)
    train_command.add_argument("--batch-size", type=integer(1), default=128,
                               help="examples per step, per process (default: %(default)s)")
    train_command.add_argument("--epochs", type=integer(1), default=10,
                               help="epochs in all, counting those a resumed run has done (default: %(default)s)")
    train_command.add_argument("--backend", default=None, choices=backend_choices(), help=_BACKEND_HELP)
    train_command.add_argument("--device", default=None, help="device of the backend (cuda:1, mps, device1, ...)")
    train_command.add_argument("--seed", type=integer(0), default=None,
                               help=f"seeds the weights and the order of the examples (default: {DEFAULT_SEED}; "
                                    "with --resume, the checkpoint's, and another is an error)")
    train_command.add_argument("--train-subset", "--subset", type=integer(1), default=None,
                               help="train on the first N examples only")
    train_command.add_argument("--download", action="store_true", help=_DOWNLOAD_HELP)
    train_command.add_argument("--quiet", action="store_true", help="no progress bar")
    train_command.add_argument("--checkpoint-dir", default=None,
                       help="write last.safetensors every epoch and best.safetensors (test accuracy) here")
    train_command.add_argument("--resume", action="store_true",
                               help="continue the run saved in CHECKPOINT_DIR/last.safetensors: the network, "
                                    "optimizer and schedule flags must be the checkpoint's; a constant-rate run "
                                    "can be given more --epochs")
    train_command.add_argument("--plot", default=None, metavar="PNG",
                               help="draw loss and accuracy curves of the epochs this command trains (after "
                                    "--resume, those after the checkpoint's) to this file (PNG, or the format its "
                                    "suffix names: .svg, .pdf, ...)")

    evaluation = commands.add_parser("eval", help="test loss and accuracy of a `gdnet train` checkpoint")
    evaluation.add_argument("checkpoint")
    evaluation.add_argument("--dataset", choices=DATASETS, default=None, help="default: the one it was trained on")
    evaluation.add_argument("--data-root", default=None)
    evaluation.add_argument("--download", action="store_true", help=_DOWNLOAD_HELP)
    evaluation.add_argument("--backend", default=None, choices=backend_choices(), help=_BACKEND_HELP)
    evaluation.add_argument("--device", default=None)

    commands.add_parser("info", help="backends that answer here, their devices and versions")

    from .experiments import NAMES as EXPERIMENT_NAMES

    experiments = commands.add_parser(
        "experiments", help="measure the textbook tables of gradient descent on Fashion-MNIST (markdown + PNG)")
    experiments.add_argument("name", choices=[*EXPERIMENT_NAMES, "all"], metavar="NAME",
                             help=f"one of: {', '.join(EXPERIMENT_NAMES)}, all")
    experiments.add_argument("--quick", action="store_true", help="the small sizes CI runs (seconds, not minutes)")
    experiments.add_argument("--out", default="experiments",
                             help="folder for NAME.md and NAME.png, created if missing (default: ./%(default)s)")
    experiments.add_argument("--backend", default=None, choices=backend_choices(), help=_BACKEND_HELP)
    experiments.add_argument("--seed", type=integer(0), default=0)
    experiments.add_argument("--data-root", default=None)
    experiments.add_argument("--download", action="store_true", help=_DOWNLOAD_HELP)
    return parser


def backend_choices() -> list[str]:
    """What ``--backend`` takes: "auto" and every registered backend."""
    from . import backends

    return ["auto", *backends.names()]


def info(out=sys.stdout) -> None:
    """Every registered backend: its library's version, and its devices or why it is unavailable."""
    from . import backends

    print(f"gdnet {__version__}", file=out)
    for name in backends.names():
        cls = backends.backend_class(name)
        reason = cls.unavailable_reason()
        version = cls.version() or "not installed"
        status = f"devices {', '.join(cls.devices())}" if reason is None else f"unavailable: {reason}"
        print(f"  {name:<17} {version:<12} {status}", file=out)
    print(f"  active: {get_backend().describe()}; available: {', '.join(available_backends())}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            run_training(args)
        elif args.command == "eval":
            run_evaluation(args)
        elif args.command == "info":
            info()
        elif args.command == "experiments":
            from .data import datasets
            from .experiments import run_experiments

            check_folder(f"--out {args.out}", args.out)  # NAME.md and NAME.png go there, after minutes of training

            with _use_backend(args):  # --backend, or GDNET_BACKEND's choice, checked before anything runs
                choice = args.backend or os.environ.get(ENVIRONMENT_VARIABLE) or "auto"
            if args.download:
                datasets.find("fashion-mnist", args.data_root, download=True)
            for written in run_experiments(args.name, args.out, args.quick, choice, args.seed, args.data_root,
                                           log=sys.stdout):
                print(f"wrote {written['markdown']}" + (f" and {written['plot']}" if written["plot"] else ""))
    except (ValueError, OSError, RuntimeError) as exc:
        # bad names, missing data, unusable backends: a message, not a traceback
        message = f"gdnet {args.command}: error: {exc}\n"
        if distributed.world_size() > 1:  # the other ranks would wait for this one for ever
            sys.stderr.write(message)
            distributed.abort(2)
        parser.exit(2, message)
    except KeyboardInterrupt as exc:  # Ctrl-C: where the run stands, not a traceback
        message = f"gdnet {args.command}: {exc if isinstance(exc, Interrupted) else 'interrupted'}\n"
        if distributed.world_size() > 1:
            sys.stderr.write(message)
            distributed.abort(130)
        parser.exit(130, message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
