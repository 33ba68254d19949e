"""What every example shares: its command-line flags, the data, and the epoch loop's printing."""

from __future__ import annotations

import argparse
import time

import gdnet as gd


def parse_args(description: str, epochs: int, batch_size: int, lr: float, extra=None) -> argparse.Namespace:
    """The flags every example takes (--backend, --device, --epochs, ...), plus ``extra(parser)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", default="auto", help="auto, numpy, cupy or array_api_strict")
    parser.add_argument("--device", default=None, help="a device of the backend (cuda:1, device1, ...)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", "--train-subset", type=int, default=None,
                        help="train on the first N training images only")
    parser.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files")
    if extra:
        extra(parser)
    return parser.parse_args()


def setup(args: argparse.Namespace):
    """Activate the backend, seed everything, load Fashion-MNIST; returns (backend, train, test)."""
    backend = gd.set_backend(args.backend, args.device)
    gd.manual_seed(args.seed)
    train, test = gd.datasets.fashion_mnist(args.data_root)
    if args.subset:
        train = gd.data.ArrayDataset(train.inputs[: args.subset], train.targets[: args.subset], classes=train.classes)
    print(f"{backend.describe()}, {len(train)} training images, seed {args.seed}")
    return backend, train, test


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
              f"test acc {accuracy:.2%}  {seconds:.1f} s", flush=True)
    print(f"test accuracy: {accuracy:.2%} ({total:.0f} s of training)")
    return accuracy
