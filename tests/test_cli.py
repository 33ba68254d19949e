"""The `gdnet` command's checks that run before any data is read: flag values, the backend
choice (--backend, GDNET_BACKEND), --plot without matplotlib, and `gdnet eval` of a checkpoint
whose network description does not fit its tensors."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import peak_memory

import gdnet as gd
from gdnet import cli, models, optim
from gdnet.data import datasets
from gdnet.data.idx import write_idx
from gdnet.nn.activations import ACTIVATIONS
from gdnet.nn.init import SCHEMES
from gdnet.train import CheckpointError
from gdnet.train.checkpoint import architecture

ROOT = Path(__file__).resolve().parents[1]


def _usage_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        cli.make_parser().parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "--lr", "inf"], "argument --lr: expected a finite number > 0; got inf"),
        (["train", "--lr", "nan"], "argument --lr: expected a finite number > 0; got nan"),
        (["train", "--lr", "0"], "argument --lr: expected a finite number > 0; got 0"),
        (["train", "--lr", "-0.1"], "argument --lr: expected a finite number > 0; got -0.1"),
        (["train", "--l1", "-1"], "argument --l1: expected a finite number >= 0; got -1"),
        (["train", "--l2", "-5"], "argument --l2: expected a finite number >= 0; got -5"),
        (["train", "--l2", "inf"], "argument --l2: expected a finite number >= 0; got inf"),
        (["train", "--weight-decay=-1e-4"], "argument --weight-decay: expected a finite number >= 0"),
        (["train", "--momentum", "1"], "argument --momentum: expected a finite number in [0, 1); got 1"),
        (["train", "--momentum", "-0.5"], "argument --momentum: expected a finite number in [0, 1)"),
        (["train", "--seed", "-1"], "argument --seed: expected an integer >= 0; got -1"),
        (["experiments", "depth", "--seed", "-3"], "argument --seed: expected an integer >= 0; got -3"),
        (["train", "--lr", "fast"], "argument --lr: invalid number value: 'fast'"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(capsys, argv, expected):
    assert expected in _usage_error(capsys, *argv)


def test_in_range_numbers_are_taken():
    args = cli.make_parser().parse_args(["train", "--lr", "1e-3", "--l1", "0", "--l2", "1e-4", "--momentum", "0",
                                         "--weight-decay", "0.01", "--seed", "0"])
    assert (args.lr, args.l1, args.l2, args.momentum, args.weight_decay, args.seed) == (1e-3, 0, 1e-4, 0, 0.01, 0)


def test_subset_and_train_subset_are_one_flag_in_the_command_and_the_examples(monkeypatch):
    parser = cli.make_parser()
    assert parser.parse_args(["train", "--subset", "500"]).train_subset == 500
    assert parser.parse_args(["train", "--train-subset", "500"]).train_subset == 500
    spec = importlib.util.spec_from_file_location("examples_common", ROOT / "examples" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    for flag in ("--subset", "--train-subset"):
        monkeypatch.setattr(sys, "argv", ["example.py", flag, "300"])
        assert common.parse_args("an example", epochs=1, batch_size=32, lr=0.1).subset == 300


# -- the backend: --backend, else GDNET_BACKEND, else auto ---------------------------------------
def test_the_command_honours_gdnet_backend_and_its_flag_wins(monkeypatch):
    pytest.importorskip("array_api_strict")
    monkeypatch.setenv("GDNET_BACKEND", "array_api_strict:device1")
    for command in (["train"], ["eval", "x.safetensors"], ["experiments", "depth"]):
        with cli._use_backend(cli.make_parser().parse_args(command)) as backend:
            assert backend.name == "array_api_strict" and "device1" in str(backend.device)
    with cli._use_backend(cli.make_parser().parse_args(["train", "--backend", "numpy"])) as backend:
        assert backend.name == "numpy"
    monkeypatch.delenv("GDNET_BACKEND")
    with cli._use_backend(cli.make_parser().parse_args(["train"])) as backend:
        assert backend.name == gd._backend._resolve("auto", None).name


@pytest.mark.parametrize("command", [["train"], ["experiments", "depth", "--quick"]])
def test_a_bad_gdnet_backend_is_an_error_naming_the_variable(monkeypatch, capsys, command):
    monkeypatch.setenv("GDNET_BACKEND", "nope")
    with pytest.raises(SystemExit) as info:
        cli.main(command)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "GDNET_BACKEND='nope': unknown backend 'nope'; expected 'auto' or one of" in err and out == ""


def test_the_library_names_gdnet_backend_in_its_error_too(monkeypatch):
    monkeypatch.setenv("GDNET_BACKEND", "numpy:cuda:0")
    monkeypatch.setattr(gd._backend, "_ACTIVE", None)
    with pytest.raises(ValueError, match=r"^GDNET_BACKEND='numpy:cuda:0': "):
        gd.get_backend()


# -- --plot needs matplotlib, checked before training -----------------------------------------
def test_plot_without_matplotlib_fails_before_training(monkeypatch, capsys, tmp_path):
    for module in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--backend", "numpy", "--epochs", "1", "--plot", str(tmp_path / "curves.png"),
                  "--data-root", str(tmp_path / "nothing-here")])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "--plot" in err and "needs matplotlib" in err and "pip install matplotlib" in err
    assert out == ""  # nothing trained, no data read (its folder does not exist)


# -- the network a checkpoint describes ---------------------------------------------------------
SPECS = [
    dict(dataset="fashion-mnist", hidden=[100], activation="relu", init="he", dropout=0.0, conv=[]),
    dict(dataset="mnist", hidden=[32, 16, 8], activation="tanh", init="default", dropout=0.2, conv=[]),
    dict(dataset="fashion-mnist", hidden=[16], activation="leaky_relu", init="xavier", dropout=0.3, conv=[4, 6]),
    dict(dataset="fashion-mnist", hidden=[], activation="sigmoid", init="he", conv=[3]),
]


@pytest.mark.parametrize("spec", SPECS, ids=["mlp", "deep-dropout", "cnn", "no-hidden"])
def test_spec_shapes_are_the_shapes_of_the_model_built(spec):
    model = models.build_from_spec(spec)
    assert models.spec_shapes(spec) == {name: shape for name, shape, _ in architecture(model)}


def test_the_network_is_named_with_its_input_size():
    assert models.describe_network(SPECS[0]) == "MLP 784-100-10"
    assert models.describe_network(SPECS[2]) == "conv4-conv6-MLP 294-16-10"


def _checkpoint_describing(tmp_path, network) -> Path:
    """A checkpoint of the 784-100-10 MLP whose metadata describes ``network``."""
    path = tmp_path / "model.safetensors"
    gd.manual_seed(0)
    gd.train.save(path, models.build_from_spec(SPECS[0]), network=network)
    return path


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(hidden=[30000, 30000]), r"network description \(MLP 784-30000-30000-10\) does not match the tensors "
                                      r"it stores: '1.weight' is \(100, 784\) in the file and \(30000, 784\)"),
        (dict(activation="swish"), r"activation is 'swish'; expected one of \['elu', 'gelu', 'hardtanh', "
                                   r"'leaky_relu', 'relu', 'sigmoid', 'silu', 'softplus', 'tanh'\]"),
        (dict(hidden="100"), r"hidden is '100'; expected a list of positive ints"),
        (dict(hidden=[100.0]), r"hidden is \[100.0\]; expected a list of positive ints"),
        (dict(init=7), r"init is 7; expected one of \['default', "),
        (dict(dropout="0.5"), r"dropout is '0.5'; expected a number in \[0, 1\)"),
        (dict(conv=[-4]), r"conv is \[-4\]; expected a list of positive ints"),
        (dict(dataset="cifar"), r"dataset is 'cifar'; expected one of \['fashion-mnist', 'mnist'\]"),
        (dict(hidden=None), r"hidden is None"),
    ],
    ids=["huge", "unknown-activation", "hidden-string", "hidden-floats", "init-int", "dropout-string", "conv-negative",
         "dataset", "hidden-none"],
)
def test_eval_checks_the_description_before_building_anything(tmp_path, change, expected):
    """A CheckpointError naming what is wrong (never a KeyError or TypeError), within the memory
    of reading the checkpoint: the model it describes is never built."""
    path = _checkpoint_describing(tmp_path, {**SPECS[0], **change})
    args = cli.make_parser().parse_args(["eval", str(path), "--backend", "numpy", "--data-root",
                                         str(tmp_path / "nothing-here")])

    def evaluate():
        with pytest.raises(CheckpointError, match=expected):
            cli.run_evaluation(args)

    assert peak_memory(evaluate) < 8 * path.stat().st_size + (1 << 20)


@pytest.mark.parametrize("network", ["784-100-10", ["relu"], {}], ids=["string", "list", "empty"])
def test_eval_refuses_a_description_of_the_wrong_type(tmp_path, network):
    path = _checkpoint_describing(tmp_path, network)
    args = cli.make_parser().parse_args(["eval", str(path), "--backend", "numpy"])
    with pytest.raises(CheckpointError, match="network description"):
        cli.run_evaluation(args)


def _choices(argv_prefix, flag):
    parser = cli.make_parser()
    command = parser._subparsers._group_actions[0].choices[argv_prefix]
    return next(action.choices for action in command._actions if flag in action.option_strings)


def test_the_commands_choices_come_from_the_registries():
    assert list(_choices("train", "--optimizer")) == list(optim.optimizers())
    assert set(optim.optimizers()) == {"sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam", "adamax",
                                       "radam"}
    assert list(_choices("train", "--activation")) == sorted(ACTIVATIONS)
    assert list(_choices("train", "--init")) == ["default", *SCHEMES]
    assert list(_choices("train", "--dataset")) == list(datasets.SOURCES)
    for command in ("train", "eval", "experiments"):
        assert list(_choices(command, "--backend")) == ["auto", *gd.backends.names()]


@pytest.mark.parametrize("name", sorted(optim.optimizers()))
def test_every_optimizer_is_built_with_the_flags_it_takes(name):
    args = cli.make_parser().parse_args(["train", "--optimizer", name, "--lr", "0.01", "--weight-decay", "0.1"])
    opt = cli.make_optimizer(args, [gd.zeros((2,), requires_grad=True)])
    group = opt.param_groups[0]
    assert type(opt) is optim.optimizers()[name] and group["lr"] == 0.01 and group["weight_decay"] == 0.1
    if name == "sgd":
        assert group["momentum"] == 0.9  # the command's default


def test_a_flag_the_optimizer_does_not_take_is_an_error():
    args = cli.make_parser().parse_args(["train", "--optimizer", "adam", "--momentum", "0.5"])
    with pytest.raises(ValueError, match="--momentum 0.5: Adam takes no momentum"):
        cli.make_optimizer(args, [gd.zeros((2,), requires_grad=True)])
    args = cli.make_parser().parse_args(["train", "--optimizer", "rmsprop", "--momentum", "0.5"])
    assert cli.make_optimizer(args, [gd.zeros((2,), requires_grad=True)]).param_groups[0]["momentum"] == 0.5


# -- --resume continues the checkpoint's run, or refuses before anything is read ------------------
def _saved_run(folder: Path, *flags: str, epoch: int = 2) -> Path:
    """``folder``/last.safetensors as `gdnet train *flags --checkpoint-dir folder` leaves it after
    ``epoch`` epochs (the weights untrained: only the states matter here)."""
    args = cli.make_parser().parse_args(["train", *flags])
    spec = cli.model_spec(args)
    model = models.build_from_spec(spec)
    optimizer = cli.make_optimizer(args, model.parameters())
    schedule = None
    if args.schedule == "cosine":
        schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
        for _ in range(epoch):
            schedule.step()
    path = folder / "last.safetensors"
    gd.train.save(path, model, optimizer, schedule, epoch=epoch, network=spec)
    return path


def _train_error(capsys, tmp_path, *argv: str) -> str:
    """The usage error of `gdnet train *argv`, checked to come before any data is read."""
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--backend", "numpy", *argv, "--data-root", str(tmp_path / "nothing-here")])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("gdnet train: error: ")
    return err


COSINE = ("--hidden", "64", "--schedule", "cosine", "--epochs", "2")


@pytest.mark.parametrize(
    "saved, resumed, expected",
    [
        (COSINE, ("--hidden", "64", "--schedule", "cosine", "--epochs", "4"),
         "--epochs 4 where the checkpoint's run has --epochs 2 (a cosine schedule anneals over the whole run"),
        (COSINE, ("--hidden", "64", "--lr", "0.5", "--schedule", "constant", "--epochs", "8"),
         "--lr 0.5 where the checkpoint's run has --lr 0.05; --schedule constant where the checkpoint's run has "
         "--schedule cosine. Pass the checkpoint's values to continue it, or start a new run with another "
         "--checkpoint-dir"),
        (("--epochs", "2"), ("--epochs", "4", "--schedule", "cosine"),
         "--schedule cosine where the checkpoint's run has --schedule constant"),
        (("--epochs", "2"), ("--epochs", "4", "--optimizer", "adam", "--lr", "1e-3"),
         "--optimizer adam where the checkpoint's run has --optimizer sgd. Pass the checkpoint's value"),
        (("--epochs", "2"), ("--epochs", "4", "--momentum", "0.5"),
         "--momentum 0.5 where the checkpoint's run has --momentum 0.9"),
        (("--epochs", "2", "--nesterov"), ("--epochs", "4"), "no --nesterov where the checkpoint's run has --nesterov"),
        (("--epochs", "2"), ("--epochs", "4", "--weight-decay", "0.01"),
         "--weight-decay 0.01 where the checkpoint's run has --weight-decay 0.0"),
        (("--epochs", "2", "--optimizer", "rmsprop", "--momentum", "0.5"), ("--epochs", "4", "--optimizer", "rmsprop"),
         "--momentum 0.0 where the checkpoint's run has --momentum 0.5"),
        (("--hidden", "64", "32", "--activation", "tanh"), ("--hidden", "100"),
         "holds the network MLP 784-64-32-10, trained with --dataset fashion-mnist --hidden 64 32 --activation tanh "
         "--init he; this command asks for --hidden 100 --activation relu (MLP 784-100-10). The network flags must "
         "match the checkpoint's: pass those, or start a new run with another --checkpoint-dir"),
        (("--conv", "4", "--hidden", "16", "--dropout", "0.2"), ("--hidden", "16"),
         "trained with --dataset fashion-mnist --conv 4 --hidden 16 --activation relu --init he --dropout 0.2; this "
         "command asks for no --conv --dropout 0.0 (MLP 784-16-10)"),
    ],
    ids=["longer-cosine", "lr-and-schedule", "schedule", "optimizer", "momentum", "nesterov", "weight-decay",
         "rmsprop-momentum", "network", "cnn"],
)
def test_resume_refuses_flags_that_change_the_run(capsys, tmp_path, saved, resumed, expected):
    _saved_run(tmp_path, *saved)
    err = _train_error(capsys, tmp_path, *resumed, "--resume", "--checkpoint-dir", str(tmp_path))
    assert f"{tmp_path / 'last.safetensors'}" in err and expected in err


@pytest.mark.parametrize("flags, more", [(("--epochs", "2"), ("--epochs", "8")), (COSINE, ())],
                         ids=["constant-longer", "cosine-same"])
def test_resume_takes_the_checkpoints_own_flags(tmp_path, flags, more):
    path = _saved_run(tmp_path, *flags, epoch=1)
    args = cli.make_parser().parse_args(["train", *flags, *more, "--resume", "--checkpoint-dir", str(tmp_path)])
    cli.check_resume(args, gd.train.load(path))  # no error: the same run, continued


def test_resumed_cosine_run_uses_and_prints_the_checkpoints_rate(tmp_path):
    """An interrupted cosine run resumed: the header shows the rate of epoch 2 (half of --lr,
    not --lr), and the schedule ends at 0 after --epochs, as one uninterrupted run would."""
    from test_training import _fashion_mnist_or_skip

    _fashion_mnist_or_skip()
    flags = ["train", "--backend", "numpy", "--quiet", "--subset", "300", "--hidden", "16", "--schedule", "cosine",
             "--epochs", "2", "--weight-decay", "1e-4", "--dropout", "0.1", "--checkpoint-dir", str(tmp_path)]
    args = cli.make_parser().parse_args(flags)
    with gd.use_backend("numpy"):  # epoch 1 of the run, saved as the command saves it
        gd.manual_seed(0)
        train_set, test_set = datasets.fashion_mnist()
        train_set = gd.data.ArrayDataset(train_set.inputs[:300], train_set.targets[:300], classes=train_set.classes)
        loader = gd.data.DataLoader(train_set, batch_size=128, shuffle=True, seed=0)
        model = models.build_from_spec(cli.model_spec(args))
        optimizer = cli.make_optimizer(args, model.parameters())
        schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2)
        saver = gd.train.ModelCheckpoint(tmp_path, monitor="loss", save_best=False,
                                         extra={"network": cli.model_spec(args)})
        gd.train.fit(model, gd.nn.functional.cross_entropy, optimizer, loader, 1, scheduler=schedule,
                     callbacks=[saver], verbose=0)
    out = io.StringIO()
    result = cli.run_training(cli.make_parser().parse_args([*flags, "--resume"]), out=out)
    header = out.getvalue().splitlines()[0]
    assert ("sgd lr 0.025 (cosine from 0.05 to 0 over 2 epochs), momentum 0.9, weight decay 0.0001, batch 128, "
            "the first 300 training examples") in header and "(relu, init he, dropout 0.1)" in header
    assert [row["epoch"] for row in result["history"]] == [2]
    last = gd.train.load(tmp_path / "last.safetensors")
    assert last.epoch == 2 and last.scheduler_state["T_max"] == 2
    assert last.optimizer_state["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_the_header_names_every_setting_that_is_on():
    args = cli.make_parser().parse_args(["train", "--optimizer", "sgd", "--momentum", "0.5", "--nesterov",
                                         "--weight-decay", "0.01", "--dropout", "0.3", "--l2", "1e-4", "--subset",
                                         "5000", "--schedule", "cosine", "--epochs", "3"])
    spec = cli.model_spec(args)
    with gd.use_backend("numpy") as backend:
        optimizer = cli.make_optimizer(args, models.build_from_spec(spec).parameters())
        header = cli._header(args, spec, optimizer, backend, 1, 0)
    assert ("MLP 784-100-10 (relu, init he, dropout 0.3), sgd lr 0.05 (cosine to 0 over 3 epochs), momentum 0.5, "
            "weight decay 0.01, nesterov, L2 0.0001, batch 128, the first 5,000 training examples, numpy on cpu, "
            "seed 0") in header
    plain = cli.make_parser().parse_args(["train", "--optimizer", "adam"])
    with gd.use_backend("numpy") as backend:
        optimizer = cli.make_optimizer(plain, models.build_from_spec(spec).parameters())
        header = cli._header(plain, spec, optimizer, backend, 1, 0)
    assert "adam lr 0.05 (constant), batch 128, numpy on cpu" in header  # nothing that is off


# -- --plot: a folder that exists and a format matplotlib writes, checked before training ---------
@pytest.mark.parametrize(
    "name, expected",
    [
        ("curves.txt", "matplotlib cannot write the format 'txt'; expected a file name ending in one of "),
        ("missing/x.png", "the folder '{tmp}/missing' does not exist; expected an existing folder (create it first) "
                          "or the --checkpoint-dir"),
        ("", "is a folder; expected the name of an image file in it"),
    ],
    ids=["format", "missing-folder", "a-folder"],
)
def test_a_plot_that_cannot_be_written_fails_before_training(capsys, tmp_path, name, expected):
    pytest.importorskip("matplotlib")
    err = _train_error(capsys, tmp_path, "--epochs", "1", "--plot", str(tmp_path / name))
    assert f"--plot {tmp_path / name}" in err and expected.format(tmp=tmp_path) in err
    if name == "curves.txt":
        assert ".png" in err and ".svg" in err and ".pdf" in err


def test_a_plot_in_the_checkpoint_folder_to_be_created_is_taken(tmp_path):
    pytest.importorskip("matplotlib")
    cli._check_plot(str(tmp_path / "run" / "curves.svg"), str(tmp_path / "run"))
    cli._check_plot(str(tmp_path / "curves"))  # no suffix: PNG
    with pytest.raises(ValueError, match="does not exist"):
        cli._check_plot(str(tmp_path / "run" / "curves.png"), None)


# -- --help --------------------------------------------------------------------------------------
def _help(*command: str) -> str:
    parser = cli.make_parser()
    for name in command:
        parser = parser._subparsers._group_actions[0].choices[name]
    return " ".join(parser.format_help().split())  # unwrapped


def _option_help(command: str, flag: str) -> str:
    """The --help text of ``flag``, its default filled in as argparse fills it."""
    parser = cli.make_parser()._subparsers._group_actions[0].choices[command]
    action = next(action for action in parser._actions if flag in action.option_strings)
    return (action.help or "") % {"default": action.default}


def test_help_shows_the_defaults_and_the_install_hint_of_the_readme():
    text = _help("train")
    for flag, default in [("--lr", "0.05"), ("--epochs", "10"), ("--batch-size", "128"), ("--hidden", "100"),
                          ("--optimizer", "sgd")]:
        help_ = " ".join(_option_help("train", flag).split())
        assert f"(default: {default})" in help_ and f"(default: {default})" in text, flag
    assert "pip install -e '.[distributed]'" in text
    assert "(default: ./experiments)" in _help("experiments")
    for command in ((), ("train",), ("eval",), ("info",), ("experiments",)):
        assert "gdnet-array[" not in _help(*command)  # gdnet is not on PyPI: extras of the checkout
    # no message anywhere names an install from PyPI, where the name is another project's
    sources = [*(ROOT / "gdnet").rglob("*.py"), *(ROOT / "backends").rglob("*.py")]
    assert [path.name for path in sources if "gdnet-array[" in path.read_text()] == []


def test_a_train_subset_beyond_the_training_set_is_an_error(capsys, tmp_path):
    # a slice would quietly take all 96 examples of this set and train on fewer than asked
    root = tmp_path / "tiny"
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 96), ("t10k", 40)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--backend", "numpy", "--epochs", "1", "--train-subset", "97", "--data-root", str(root)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--train-subset 97: the training set has 96 examples; expected at most 96" in err
