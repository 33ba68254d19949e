"""The ``gdnet`` command.

    gdnet train --dataset fashion-mnist --hidden 100 --epochs 10 --backend auto
    gdnet info
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Sequence

from . import __version__
from ._backend import available_backends, get_backend, manual_seed, use_backend
from .nn.init import SCHEMES
from .nn.layers import Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh
from .train import evaluate, train_epoch

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU}
DATASETS = ("fashion-mnist", "mnist")


def build_mlp(in_features: int, hidden: Sequence[int], classes: int, activation: str = "relu",
              init: str = "default") -> Sequential:
    """Flatten, then Linear + activation per hidden size, then a Linear to ``classes`` scores."""
    layers: list[Any] = [Flatten()]
    width = in_features
    for size in hidden:
        layers += [Linear(width, size, init=init), ACTIVATIONS[activation]()]
        width = size
    layers.append(Linear(width, classes, init=init))
    return Sequential(*layers)


OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam", "adamax", "radam")


def make_optimizer(args: argparse.Namespace, params):
    """The optimizer ``--optimizer`` names, with --lr and --weight-decay (and --momentum,
    --nesterov for SGD, --momentum for RMSprop)."""
    from . import optim

    settings = dict(lr=args.lr, weight_decay=args.weight_decay)
    if args.optimizer == "sgd":
        momentum = 0.9 if args.momentum is None else args.momentum
        return optim.SGD(params, momentum=momentum, nesterov=args.nesterov, **settings)
    if args.optimizer == "rmsprop":
        return optim.RMSprop(params, momentum=args.momentum or 0.0, **settings)
    classes = {"adagrad": optim.Adagrad, "adadelta": optim.Adadelta, "adam": optim.Adam, "adamw": optim.AdamW,
               "nadam": optim.NAdam, "adamax": optim.Adamax, "radam": optim.RAdam}
    return classes[args.optimizer](params, **settings)


def run_training(args: argparse.Namespace, out=sys.stdout) -> dict[str, Any]:
    """Train an MLP as ``gdnet train`` describes; print one line per epoch; return the figures."""
    from . import data, optim

    with use_backend(args.backend, args.device) as backend:
        manual_seed(args.seed)
        loader_name = "fashion_mnist" if args.dataset == "fashion-mnist" else "mnist"
        train_set, test_set = getattr(data.datasets, loader_name)(root=args.data_root)
        if args.train_subset:
            n = args.train_subset
            train_set = data.ArrayDataset(train_set.inputs[:n], train_set.targets[:n], classes=train_set.classes)
        train_loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
        test_loader = data.DataLoader(test_set, batch_size=1000)
        model = build_mlp(28 * 28, args.hidden, 10, args.activation, args.init)
        optimizer = make_optimizer(args, model.parameters())
        schedule = None
        if args.schedule == "cosine":
            schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
        print(f"gdnet {__version__}: {args.dataset}, MLP 784-{'-'.join(map(str, args.hidden))}-10 "
              f"({args.activation}, init {args.init}), {args.optimizer} lr {args.lr} ({args.schedule}), "
              f"batch {args.batch_size}, {backend.describe()}, seed {args.seed}", file=out)
        progress = not args.quiet and sys.stderr.isatty()
        history = []
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            train_loss, train_acc = train_epoch(model, train_loader, optimizer, progress=progress,
                                                    description=f"epoch {epoch}")
            if schedule is not None:
                schedule.step()
            backend.synchronize()
            seconds = time.perf_counter() - start
            test_loss, test_acc = evaluate(model, test_loader)
            history.append(dict(epoch=epoch, loss=train_loss, train_accuracy=train_acc,
                                test_loss=test_loss, test_accuracy=test_acc, seconds=seconds))
            print(f"epoch {epoch:>3}/{args.epochs}  loss {train_loss:.4f}  train acc {train_acc:.2%}  "
                  f"test acc {test_acc:.2%}  {seconds:.1f} s", file=out, flush=True)
        final = history[-1]["test_accuracy"] if history else float("nan")
        print(f"test accuracy: {final:.2%}", file=out)
        return {"history": history, "test_accuracy": final, "model": model}


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdnet", description="Backpropagation and gradient descent on any array library.")
    parser.add_argument("--version", action="version", version=f"gdnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an MLP classifier and print test accuracy")
    train.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    train.add_argument("--data-root", default=None,
                       help="folder with the IDX files (default: GDNET_DATA, the user cache, /usr/share/datasets)")
    train.add_argument("--hidden", type=_positive_int, nargs="+", default=[100],
                       help="hidden layer sizes, e.g. --hidden 256 128")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    train.add_argument("--init", choices=["default", *SCHEMES], default="he")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    train.add_argument("--lr", type=float, default=0.05)
    train.add_argument("--momentum", type=float, default=None, help="SGD's (default 0.9) or RMSprop's (default 0)")
    train.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                       help="learning rate per epoch: constant, or cosine annealing to 0 over the epochs")
    train.add_argument("--nesterov", action="store_true")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--batch-size", type=_positive_int, default=128)
    train.add_argument("--epochs", type=_positive_int, default=10)
    train.add_argument("--backend", default="auto", help="auto, numpy, cupy or array_api_strict")
    train.add_argument("--device", default=None, help="device of the backend (cuda:1, device1, ...)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--train-subset", type=_positive_int, default=None, help="train on the first N examples only")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    commands.add_parser("info", help="backends that answer here, their devices and versions")
    return parser


def info(out=sys.stdout) -> None:
    from importlib import metadata

    from . import backends

    print(f"gdnet {__version__}", file=out)
    for name in backends.names():
        cls = backends.backend_class(name)
        reason = cls.unavailable_reason()
        package = {"numpy": "numpy", "array_api_strict": "array-api-strict", "cupy": "cupy"}[name]
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            wheels = [p for p in ("cupy-cuda13x", "cupy-cuda12x") if _installed(p)]
            version = metadata.version(wheels[0]) if wheels else "not installed"
        status = f"devices {', '.join(cls.devices())}" if reason is None else f"unavailable: {reason}"
        print(f"  {name:<17} {version:<12} {status}", file=out)
    print(f"  active: {get_backend().describe()}; available: {', '.join(available_backends())}", file=out)


def _installed(package: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            run_training(args)
        elif args.command == "info":
            info()
    except (ValueError, OSError, RuntimeError) as exc:
        # bad names, missing data, unusable backends: a message, not a traceback
        parser.exit(2, f"gdnet {args.command}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
