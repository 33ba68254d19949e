"""`gdnet experiments`: every experiment's --quick size on the real Fashion-MNIST."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pytest
from test_training import _fashion_mnist_or_skip

import gdnet as gd
from gdnet import cli, experiments

# the rows each table must have, in order
ROWS = {
    "activations": ["sigmoid", "tanh", "ReLU"],
    "learning-rate": ["0.1", "0.01", "0.001"],
    "batch-size": ["1 (stochastic)", "10", "100", "full batch"],
    "generalisation": ["1", "2"],
    "init": ["normal (std 0.01)", "Xavier/Glorot", "He"],
    "depth": ["1 hidden layer", "2 hidden layers", "3 hidden layers"],
    "regularisation": ["none", "L1 (1e-5)", "L2 (1e-4)", "dropout (0.2)"],
    "scaling": ["1,000", "10,000", "100,000"],
}


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first markdown table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert set(cells[1]) == {"---"}, lines[1]
    return cells[0], cells[2:]


def test_every_experiment_has_expected_rows():
    assert set(ROWS) == set(experiments.NAMES)


@pytest.mark.parametrize("name", experiments.NAMES)
def test_quick_experiment_writes_a_table_and_a_plot(name, tmp_path):
    pytest.importorskip("matplotlib")
    _fashion_mnist_or_skip()
    args = cli.make_parser().parse_args(["experiments", name, "--quick", "--out", str(tmp_path / "out"),
                                         "--backend", "numpy", "--seed", "0"])
    log = io.StringIO()
    result = experiments.run_experiments(args.name, args.out, args.quick, args.backend, args.seed, log=log)[0]
    text = result["markdown"].read_text()
    assert result["markdown"] == tmp_path / "out" / f"{name}.md"
    header, rows = _table(text)
    assert [row[0] for row in rows] == ROWS[name]
    assert all(len(row) == len(header) for row in rows)
    for needle in ("numpy on cpu", "seed 0", "gdnet ", "numpy ", "UTC", f"gdnet experiments {name} --quick"):
        assert needle in text, needle
    assert result["plot"] == tmp_path / "out" / f"{name}.png"
    assert result["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    runs = result["runs"]
    assert len(runs) == len(experiments.EXPERIMENTS[name].variants)
    # each progress line times the whole variant and gives the training seconds the table shows
    for line, run in zip(log.getvalue().splitlines(), runs, strict=True):
        training = sum(run.history["seconds"])
        per_epoch = experiments._seconds(run)
        assert f" (training {training:.3f} s of it, {per_epoch:.3f} s per epoch; the rest builds " in line
    for run in runs:
        for row in run.history:
            assert math.isfinite(row["loss"]) and math.isfinite(row["val_loss"]), (run.label, row)
            assert 0.0 <= row["val_accuracy"] <= 1.0
    # the best variant learns: well above chance (10 classes)
    assert max(run.history["val_accuracy"][-1] for run in runs) > 0.5


def test_quick_sizes_match_the_spec():
    batch = {run_label: settings for run_label, settings in experiments.EXPERIMENTS["batch-size"].variants.items()}
    assert batch["full batch"]["batch_size"] is None
    assert experiments.EXPERIMENTS["batch-size"].quick.overrides["1 (stochastic)"]["train_examples"] <= 500
    scaling = experiments.EXPERIMENTS["scaling"]
    assert [o["repeat_to"] for o in scaling.quick.overrides.values()] == [1000, 10000, 100000]
    assert [o["repeat_to"] for o in scaling.full.overrides.values()] == [10000, 100000, 1000000]


def test_dropout_variant_puts_dropout_after_each_hidden_activation():
    settings = {**experiments.BASE, "hidden": (8, 8), "dropout": 0.2}
    kinds = [type(layer).__name__ for layer in experiments.build_model(settings)]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_unknown_experiment_is_a_usage_error_listing_the_names():
    result = subprocess.run([sys.executable, "-m", "gdnet.cli", "experiments", "nope"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 2
    for name in (*experiments.NAMES, "all"):
        assert name in result.stderr
    with pytest.raises(ValueError, match="activations"):
        experiments.run_experiment("nope")


def test_out_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    expected = r"out='.*/file' is a file; expected a folder for depth.md and depth.png"
    with pytest.raises(NotADirectoryError, match=expected):
        experiments.run_experiment("depth", tmp_path / "file", quick=True, backend="numpy")


def test_experiments_command_runs_in_a_subprocess(tmp_path):
    _fashion_mnist_or_skip()
    pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, "-m", "gdnet.cli", "experiments", "depth", "--quick", "--backend",
                             "numpy", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    header, rows = _table((tmp_path / "depth.md").read_text())
    assert [row[0] for row in rows] == ROWS["depth"]
    assert (tmp_path / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_footer_explains_epochs_to_threshold_only_where_the_table_has_it():
    _fashion_mnist_or_skip()
    size = experiments.Size(train_examples=300, test_examples=200, epochs=1, threshold=0.5)
    with gd.use_backend("numpy"):
        train_set, test_set = gd.data.datasets.fashion_mnist()
        test_loader = gd.data.DataLoader(experiments._first(test_set, size.test_examples), batch_size=1000)
        run = experiments.run_variant("ReLU", dict(experiments.BASE), train_set, test_loader, size, 0)
    for name in experiments.NAMES:
        experiment = experiments.EXPERIMENTS[name]
        text = experiments.markdown_table(experiment, [run], size, "numpy on cpu", 0, True)
        header, _ = _table(text)
        has_column = "epochs to threshold" in header
        assert has_column == ("epochs_to" in experiment.columns)
        assert ("'epochs to threshold' is the first epoch with 50% test accuracy" in text) == has_column, name


def test_scaling_progress_names_each_variant_by_its_size():
    scaling = experiments.EXPERIMENTS["scaling"]
    for size, expected in ((scaling.quick, ["1,000", "10,000", "100,000"]),
                           (scaling.full, ["10,000", "100,000", "1,000,000"])):
        titles = [experiments.variant_title(label, {**experiments.BASE, **changes, **size.overrides.get(label, {})})
                  for label, changes in scaling.variants.items()]
        assert titles == [f"{n} examples" for n in expected]
    depth = experiments.EXPERIMENTS["depth"]
    assert [experiments.variant_title(label, {**experiments.BASE, **changes})
            for label, changes in depth.variants.items()] == list(depth.variants)
