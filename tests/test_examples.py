"""The examples run end to end: each script on a tiny Fashion-MNIST-format dataset, one epoch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdnet.data import write_idx

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
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 96), ("t10k", 40)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
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


@pytest.mark.parametrize("script", STRICT)
def test_example_keeps_to_one_device(script, data_root):
    pytest.importorskip("array_api_strict")
    out = run(script, ["--backend", "array_api_strict", "--device", "device1"], data_root)
    assert RUNS[script][1] in out
