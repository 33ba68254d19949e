"""End to end: the `gdnet train` script on the real Fashion-MNIST."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gdnet as gd
from gdnet import cli, models


def _fashion_mnist_or_skip():
    try:
        gd.data.datasets.fashion_mnist()
    except gd.data.DatasetNotFoundError:
        if os.environ.get("CI"):
            raise  # CI installs the data: missing files there are a failure, not a skip
        pytest.skip("Fashion-MNIST files not found (make test installs dataset-fashion-mnist)")


def _train(*flags: str):
    args = cli.make_parser().parse_args(["train", "--quiet", *flags])
    with open(os.devnull, "w") as sink:
        return cli.run_training(args, out=sink)


@pytest.mark.slow
def test_mlp_reaches_87_percent_on_fashion_mnist():
    """The issue's recipe: 784-100-10 ReLU, SGD lr 0.05 momentum 0.9, batch 128, 10 epochs."""
    _fashion_mnist_or_skip()
    result = _train("--backend", "numpy", "--hidden", "100", "--epochs", "10", "--batch-size", "128",
                    "--lr", "0.05", "--momentum", "0.9", "--seed", "0")
    assert result["test_accuracy"] >= 0.870, result["history"]
    losses = [epoch["loss"] for epoch in result["history"]]
    assert losses[-1] < losses[0]


def test_same_script_trains_on_strict_device1():
    """A shorter run on array_api_strict's device1: no device mixing or hidden host copies."""
    _fashion_mnist_or_skip()
    result = _train("--backend", "array_api_strict", "--device", "device1", "--train-subset", "2000",
                    "--epochs", "1", "--seed", "0")
    model = result["model"]
    assert all(str(p.device).endswith("'device1')") for p in model.parameters())
    assert result["test_accuracy"] > 0.5
    assert np.isfinite(result["history"][0]["loss"])


def test_two_runs_with_one_seed_give_bit_identical_weights():
    _fashion_mnist_or_skip()
    flags = ("--backend", "numpy", "--train-subset", "3000", "--epochs", "2", "--seed", "3")
    first, second = _train(*flags)["model"], _train(*flags)["model"]
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
    different = _train("--backend", "numpy", "--train-subset", "3000", "--epochs", "2", "--seed", "4")["model"]
    first_weight, other_weight = first.state_dict()["1.weight"], different.state_dict()["1.weight"]
    assert not np.array_equal(np.asarray(first_weight), np.asarray(other_weight))


def _gdnet(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdnet.cli", *argv], capture_output=True, text=True, timeout=600)


def test_command_prints_a_line_per_epoch_and_the_test_accuracy():
    _fashion_mnist_or_skip()
    done = _gdnet("train", "--backend", "numpy", "--train-subset", "1000", "--epochs", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "fashion-mnist, MLP 784-100-10 (relu, init he)" in lines[0]  # as README.md shows it
    assert sum(line.startswith("epoch") for line in lines) == 2
    assert "loss" in lines[1] and "train acc" in lines[1] and "test acc" in lines[1]
    assert lines[-1].startswith("test accuracy:")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "--epochs", "0"], "expected an integer >= 1; got 0"),
        (["train", "--activation", "swish"], "invalid choice"),
        (["train", "--backend", "nope", "--train-subset", "10"], "invalid choice: 'nope'"),
        pytest.param(
            ["train", "--backend", "cupy", "--train-subset", "10"], "backend 'cupy' cannot be used",
            marks=pytest.mark.skipif(gd.backends.backend_class("cupy").is_available(), reason="cupy works here"),
        ),
        (["fly"], "invalid choice"),
        (["train", "--dropout", "1.5"], "expected a finite number in [0, 1); got 1.5"),
        (["train", "--conv", "0"], "expected an integer >= 1; got 0"),
    ],
)
def test_bad_flags_are_usage_errors(argv, expected):
    done = _gdnet(*argv)
    assert done.returncode == 2
    assert expected in done.stderr


def test_missing_data_folder_is_a_clear_error(tmp_path):
    done = _gdnet("train", "--backend", "numpy", "--data-root", str(tmp_path / "nothing"))
    assert done.returncode == 2
    assert str(tmp_path / "nothing") in done.stderr


def test_info_lists_backends():
    done = _gdnet("info")
    assert done.returncode == 0, done.stderr
    assert "numpy" in done.stdout and "cupy" in done.stdout and "array_api_strict" in done.stdout


@pytest.mark.parametrize("optimizer", ["adamw", "rmsprop"])
def test_command_trains_with_another_optimizer_and_a_cosine_schedule(optimizer):
    _fashion_mnist_or_skip()
    result = _train("--backend", "numpy", "--train-subset", "2000", "--epochs", "2", "--optimizer", optimizer,
                    "--lr", "1e-3", "--schedule", "cosine")
    assert result["history"][1]["loss"] < result["history"][0]["loss"]
    assert result["test_accuracy"] > 0.6


def test_command_checkpoints_resumes_plots_and_evaluates(tmp_path):
    _fashion_mnist_or_skip()
    pytest.importorskip("matplotlib")
    folder, curves = tmp_path / "run", tmp_path / "curves.png"
    common = ("train", "--backend", "numpy", "--train-subset", "1000", "--quiet", "--checkpoint-dir", str(folder))
    first = _gdnet(*common, "--epochs", "1", "--plot", str(curves))
    assert first.returncode == 0, first.stderr
    assert (folder / "last.safetensors").exists() and (folder / "best.safetensors").exists()
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resumed = _gdnet(*common, "--epochs", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "after epoch 1" in resumed.stdout
    assert sum(line.startswith("epoch") for line in resumed.stdout.splitlines()) == 1  # only epoch 2 ran
    evaluated = _gdnet("eval", str(folder / "last.safetensors"), "--backend", "numpy")
    assert evaluated.returncode == 0, evaluated.stderr
    final = resumed.stdout.splitlines()[-1].split()[-1]  # "test accuracy: 71.23%"
    assert f"test accuracy {final}" in evaluated.stdout
    again = _gdnet(*common, "--epochs", "2", "--resume")  # nothing left to train
    assert again.returncode == 0, again.stderr
    assert "is already trained for 2 epochs (--epochs 2): nothing to train" in again.stdout
    assert f"test accuracy: {final} (epoch 2, from the checkpoint)" in again.stdout
    assert not any(line.startswith("epoch") for line in again.stdout.splitlines())


def test_resume_without_a_checkpoint_folder_is_a_usage_error(tmp_path):
    done = _gdnet("train", "--backend", "numpy", "--resume")
    assert done.returncode == 2
    assert "--resume needs --checkpoint-dir" in done.stderr
    done = _gdnet("train", "--backend", "numpy", "--train-subset", "10", "--resume", "--checkpoint-dir", str(tmp_path))
    assert done.returncode == 2
    assert "no checkpoint at" in done.stderr


def test_eval_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"not a checkpoint at all")
    done = _gdnet("eval", str(bogus), "--backend", "numpy")
    assert done.returncode == 2
    assert str(bogus) in done.stderr


@pytest.mark.slow
def test_small_cnn_beats_the_same_budget_mlp_on_10000_images():
    """One epoch on 10,000 Fashion-MNIST images, the same optimizer and batches for both."""
    _fashion_mnist_or_skip()
    nn = gd.nn
    with gd.use_backend("numpy"):
        train, test = gd.datasets.fashion_mnist()
        subset = gd.data.ArrayDataset(train.inputs[:10000], train.targets[:10000], classes=train.classes)
        test_loader = gd.data.DataLoader(test, batch_size=1000)

        def accuracy_after_one_epoch(make_model) -> float:
            gd.manual_seed(0)
            model = make_model()
            optimizer = gd.optim.Adam(model.parameters(), lr=2e-3)
            gd.train.train_epoch(model, gd.data.DataLoader(subset, batch_size=64, shuffle=True, seed=0), optimizer)
            return gd.train.evaluate(model, test_loader)[1]

        cnn = accuracy_after_one_epoch(lambda: nn.Sequential(
            nn.Unflatten(1, (1, 28)),
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
        ))
        mlp = accuracy_after_one_epoch(lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(),
                                                             nn.Linear(100, 10)))
    assert mlp > 0.7  # both learned something
    assert cnn > mlp, (cnn, mlp)


def test_command_trains_a_cnn_with_dropout_and_penalties_and_evaluates_its_checkpoint(tmp_path):
    _fashion_mnist_or_skip()
    folder = tmp_path / "cnn"
    done = _gdnet("train", "--backend", "numpy", "--train-subset", "500", "--epochs", "1", "--quiet", "--conv", "4",
                  "--hidden", "16", "--dropout", "0.2", "--l1", "1e-5", "--l2", "1e-4", "--checkpoint-dir", str(folder))
    assert done.returncode == 0, done.stderr
    assert "conv4-MLP 784-16-10" in done.stdout.splitlines()[0]
    final = done.stdout.splitlines()[-1].split()[-1]
    evaluated = _gdnet("eval", str(folder / "last.safetensors"), "--backend", "numpy")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy {final}" in evaluated.stdout
    model = models.build_from_spec(dict(hidden=[16], activation="relu", init="he", dropout=0.2, conv=[4]))
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Unflatten", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU",
                     "Dropout", "Linear"]
