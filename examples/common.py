"""What every example shares: its command-line flags, the data, and the epoch loop's printing."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NoReturn, Sequence

import numpy as np

import gdnet as gd
from gdnet.cli import backend_choices, integer, real  # the gdnet command's argparse types

COUNT = integer(1)  # epochs, batch sizes, layer sizes
POSITIVE = real(0.0, above=True)
NON_NEGATIVE = real(0.0)
PROBABILITY = real(0.0, high=1.0)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written (its example commands stay one per line), and each
    flag's default where it has one."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def make_parser(description: str, epochs: int, batch_size: int, lr: float, extra=None) -> argparse.ArgumentParser:
    """The flags every example takes (--backend, --device, --epochs, ...), plus ``extra(parser)``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)
    backends = backend_choices()
    parser.add_argument("--backend", default="auto", choices=backends, metavar="NAME",
                        help=f"auto (a GPU backend where one answers, else numpy) or one of: {', '.join(backends[1:])}")
    parser.add_argument("--device", default=None, help="a device of the backend (cuda:1, mps, device1, ...)")
    parser.add_argument("--epochs", type=COUNT, default=epochs, help="training epochs")
    parser.add_argument("--batch-size", type=COUNT, default=batch_size, help="training examples per step")
    parser.add_argument("--lr", type=POSITIVE, default=lr, help="learning rate")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed of the weights, shuffling and augmentation")
    parser.add_argument("--subset", "--train-subset", type=COUNT, default=None, metavar="N",
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files")
    if extra:
        extra(parser)
    return parser


def parse_args(description: str, epochs: int, batch_size: int, lr: float, extra=None,
               argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The example's flags from ``argv`` (default: the command line); a bad value exits with
    status 2 and a message naming the flag, the value and what it takes."""
    return make_parser(description, epochs, batch_size, lr, extra).parse_args(argv)


def usage_error(message: str) -> NoReturn:
    """Exit with status 2 and ``message``, as argparse does for a bad flag."""
    sys.stderr.write(f"{Path(sys.argv[0]).name}: error: {message}\n")
    raise SystemExit(2)


def setup(args: argparse.Namespace):
    """Activate the backend, seed everything, load Fashion-MNIST; returns (backend, train, test).
    An unusable backend or device, missing data or a --subset larger than the training set exit
    with status 2 and a message."""
    try:
        backend = gd.set_backend(args.backend, args.device)
        train, test = gd.datasets.fashion_mnist(args.data_root)
    except (ValueError, OSError, RuntimeError) as exc:
        usage_error(str(exc))
    gd.manual_seed(args.seed)
    if args.subset is not None:
        if args.subset > len(train):
            usage_error(f"argument --subset: expected at most the {len(train)} training images; got {args.subset}")
        train = gd.data.ArrayDataset(train.inputs[: args.subset], train.targets[: args.subset], classes=train.classes)
    print(f"{backend.describe()}, {len(train)} training images, seed {args.seed}")
    return backend, train, test


def duration(seconds: float) -> str:
    """``seconds`` for a log line: "12.3 s" from one second up, else milliseconds to three
    significant figures ("41.7 ms", "0.812 ms"), so short runs do not print 0."""
    # from 999.5 ms up, three figures would round to "1e+03 ms"
    return f"{seconds:.1f} s" if seconds >= 0.9995 else f"{seconds * 1e3:.3g} ms"


def fit_classifier(model, optimizer, train, test, args, scheduler=None) -> float:
    """Train for args.epochs, printing one line per epoch; returns the final test accuracy."""
    loader = gd.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = gd.data.DataLoader(test, batch_size=1000)
    backend = gd.get_backend()
    accuracy = float("nan")
    total = 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss, train_accuracy = gd.train.train_epoch(model, loader, optimizer)
        if scheduler is not None:
            scheduler.step()
        backend.synchronize()
        seconds = time.perf_counter() - start
        total += seconds
        _, accuracy = gd.train.evaluate(model, test_loader)
        print(f"epoch {epoch:>3}/{args.epochs}  loss {loss:.4f}  train acc {train_accuracy:.2%}  "
              f"test acc {accuracy:.2%}  {duration(seconds)}", flush=True)
    print(f"test accuracy: {accuracy:.2%} ({duration(total)} of training)")
    return accuracy


def features(encoder, dataset, batch_size: int = 1000) -> gd.data.ArrayDataset:
    """``encoder``'s frozen (N, D) features of every image of ``dataset`` (eval mode, no
    gradients), as a labelled host dataset; ``encoder=None`` gives the raw pixels, flattened."""
    encoder = encoder or gd.nn.Flatten()
    was_training = encoder.training
    encoder.eval()
    parts = []
    with gd.no_grad():
        for x, _ in gd.data.DataLoader(dataset, batch_size=batch_size):
            parts.append(gd.nn.functional.flatten(encoder(x)).numpy())
    encoder.train(was_training)
    return gd.data.ArrayDataset(np.concatenate(parts), dataset.targets, classes=dataset.classes)


def linear_probe(train_features, test_features, epochs: int = 20, seed: int = 0) -> float:
    """Test accuracy of a linear classifier trained on frozen features (the usual measure of
    what self-supervised features learned): the features are standardised with the training
    set's mean and standard deviation, then one Linear layer is trained with Adam (lr 1e-3,
    batch 256) for ``epochs`` epochs on the training features and their labels."""
    mean = train_features.inputs.mean(axis=0)
    std = train_features.inputs.std(axis=0) + 1e-6  # constant features (blank pixels) stay 0

    def standardised(data):
        inputs = ((data.inputs - mean) / std).astype(np.float32)
        return gd.data.ArrayDataset(inputs, data.targets, classes=data.classes)

    probe = gd.nn.Linear(train_features.inputs.shape[1], 10)
    optimizer = gd.optim.Adam(probe.parameters(), lr=1e-3)
    loader = gd.data.DataLoader(standardised(train_features), batch_size=256, shuffle=True, seed=seed)
    for _ in range(epochs):
        gd.train.train_epoch(probe, loader, optimizer)
    return gd.train.evaluate(probe, gd.data.DataLoader(standardised(test_features), batch_size=1000))[1]


def add_probe_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe-epochs", type=COUNT, default=20, help="epochs of the linear probe")


def compare_probes(encoders: dict, train, test, args: argparse.Namespace) -> dict[str, float]:
    """The linear probe on each encoder's frozen features (None: the raw pixels), one printed
    line each; returns {name: test accuracy}."""
    start = time.perf_counter()
    accuracies = {}
    for name, encoder in encoders.items():
        train_features, test_features = features(encoder, train), features(encoder, test)
        accuracies[name] = linear_probe(train_features, test_features, epochs=args.probe_epochs, seed=args.seed)
        print(f"linear probe on the {name} ({train_features.inputs.shape[1]} features): "
              f"{accuracies[name]:.2%} test accuracy", flush=True)
    print(f"probes: {duration(time.perf_counter() - start)}")
    return accuracies
