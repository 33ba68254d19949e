"""The examples run end to end: each script on a tiny Fashion-MNIST-format dataset, one epoch."""

from __future__ import annotations

import ast
import importlib
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_tiny_fashion_mnist

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = ["--epochs", "1", "--batch-size", "32"]
PROBE = ["--probe-epochs", "1"]
# script -> (its flags for a tiny run, a line its output must hold)
RUNS = {
    "mlp.py": ([], "test accuracy:"),
    "cnn.py": ([], "test accuracy:"),
    "rnn.py": (["--hidden", "8"], "test accuracy:"),
    "autoencoder.py": (["--code", "4", "--hidden", "16", "--erase", "0.5", *PROBE], "linear probe on the raw pixels"),
    "contrastive.py": (["--width", "2", "--jitter", "0.2", *PROBE], "linear probe on the untrained encoder"),
}
# the example that makes views on the device also runs where device mixing is an error
STRICT = ["contrastive.py"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """96 training and 40 test images in Fashion-MNIST's file format."""
    root = tmp_path_factory.mktemp("tiny-fashion-mnist")
    write_tiny_fashion_mnist(root)
    return root


def run(script: str, backend: list[str], data_root: Path) -> str:
    flags, _ = RUNS[script]
    command = [sys.executable, str(EXAMPLES / script), *backend, "--data-root", str(data_root), *SMALL, *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("script", list(RUNS))
def test_example_runs_on_numpy(script, data_root):
    out = run(script, ["--backend", "numpy"], data_root)
    assert "96 training images" in out
    assert RUNS[script][1] in out
    assert not re.search(r"(?<![\d.])0(\.0)? s\b", out), out  # short runs print milliseconds, not 0 s


@pytest.mark.parametrize("script", STRICT)
def test_example_keeps_to_one_device(script, data_root):
    pytest.importorskip("array_api_strict")
    out = run(script, ["--backend", "array_api_strict", "--device", "device1"], data_root)
    assert RUNS[script][1] in out


@pytest.fixture()
def common(monkeypatch):
    """examples/common.py, imported the way the examples import it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("common")


def parse(common, argv):
    return common.parse_args("doc", epochs=3, batch_size=8, lr=0.1, extra=common.add_probe_flags, argv=argv)


# shared flag, a bad value, the words the message must hold
BAD_SHARED = [
    ("--epochs", "0", "integer >= 1"),
    ("--epochs", "two", "integer >= 1"),
    ("--batch-size", "0", "integer >= 1"),
    ("--subset", "-5", "integer >= 1"),
    ("--train-subset", "0", "integer >= 1"),
    ("--lr", "0", "finite number > 0"),
    ("--lr", "-0.1", "finite number > 0"),
    ("--lr", "nan", "finite number > 0"),
    ("--lr", "inf", "finite number > 0"),
    ("--seed", "-1", "integer >= 0"),
    ("--backend", "bogus", "invalid choice"),
    ("--probe-epochs", "0", "integer >= 1"),
]


@pytest.mark.parametrize("flag, value, expected", BAD_SHARED, ids=lambda v: str(v))
def test_bad_shared_flag_is_a_usage_error(common, capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        parse(common, [flag, value])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert flag.split("-", 2)[-1] in message and value in message and expected in message, message


def test_good_shared_flags_parse(common):
    args = parse(common, ["--epochs", "2", "--batch-size", "1", "--subset", "7", "--lr", "1e-3", "--seed", "0",
                          "--backend", "numpy", "--probe-epochs", "1"])
    assert (args.epochs, args.batch_size, args.subset, args.lr, args.seed, args.backend, args.probe_epochs) == (
        2, 1, 7, 1e-3, 0, "numpy", 1)
    defaults = parse(common, [])
    assert (defaults.epochs, defaults.batch_size, defaults.lr, defaults.subset, defaults.backend) == (3, 8, 0.1, None,
                                                                                                      "auto")


def test_backend_flag_takes_and_names_every_registered_backend(common, capsys):
    from gdnet import backends

    for name in backends.names():
        assert parse(common, ["--backend", name]).backend == name
    with pytest.raises(SystemExit):
        parse(common, ["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in backends.names()), help_text


# script, its own flag, a bad value, the words the message must hold
BAD_OWN = [
    ("contrastive.py", "--temperature", "0", "finite number > 0"),
    ("contrastive.py", "--temperature", "nan", "finite number > 0"),
    ("contrastive.py", "--width", "0", "integer >= 1"),
    ("contrastive.py", "--features", "-3", "integer >= 1"),
    ("contrastive.py", "--fc", "-1", "integer >= 0"),
    ("contrastive.py", "--crop-scale", "0", "in (0, 1]"),
    ("contrastive.py", "--crop-scale", "1.5", "in (0, 1]"),
    ("contrastive.py", "--degrees", "-5", ">= 0"),
    ("contrastive.py", "--erase", "1.2", "in [0, 1]"),
    ("contrastive.py", "--jitter", "-0.1", ">= 0"),
    ("contrastive.py", "--noise", "inf", ">= 0"),
    ("autoencoder.py", "--code", "0", "integer >= 1"),
    ("autoencoder.py", "--hidden", "0", "integer >= 1"),
    ("autoencoder.py", "--erase", "-0.5", "in [0, 1]"),
    ("rnn.py", "--hidden", "0", "integer >= 1"),
    ("rnn.py", "--cell", "transformer", "invalid choice"),
]


@pytest.mark.parametrize("script, flag, value, expected", BAD_OWN, ids=lambda v: str(v))
def test_bad_example_flag_is_a_usage_error(monkeypatch, capsys, script, flag, value, expected):
    # the scripts parse their flags first: a bad one stops them before any data or training
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [script, flag, value])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert flag in message and value in message and expected in message, message


@pytest.mark.parametrize("script", list(RUNS))
def test_help_shows_the_docstring_commands_as_written(script):
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    commands = [line for line in ast.get_docstring(ast.parse((EXAMPLES / script).read_text()), clean=False).splitlines()
                if line.lstrip().startswith("python examples/")]
    assert commands
    for command in commands:
        assert command in done.stdout.splitlines(), done.stdout


@pytest.mark.parametrize("script, flags, expected", [
    ("mlp.py", ["--subset", "97"], "argument --subset: expected at most the 96 training images; got 97"),
    ("mlp.py", ["--data-root", "no-such-folder"], "dataset 'fashion-mnist' not found"),
    # drop_last: 96 images in batches of 128 would give no step at all
    ("contrastive.py", ["--batch-size", "128"],
     "argument --batch-size: expected at most the 96 training images; got 128"),
    # one image per batch: NT-Xent has no negatives, and its loss is 0 whatever the encoder
    ("contrastive.py", ["--batch-size", "1"],
     "argument --batch-size: expected at least 2 (NT-Xent needs other images as negatives); got 1"),
])
def test_setup_errors_are_usage_errors(script, flags, expected, data_root):
    command = [sys.executable, str(EXAMPLES / script), "--backend", "numpy", "--data-root", str(data_root), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("seconds, shown", [
    (0.0004123, "0.412 ms"), (0.0417, "41.7 ms"), (0.5, "500 ms"), (0.9994, "999 ms"), (0.9996, "1.0 s"),
    (1.0, "1.0 s"), (73.26, "73.3 s"),
])
def test_duration_keeps_short_times_non_zero(common, seconds, shown):
    assert common.duration(seconds) == shown
