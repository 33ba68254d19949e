"""The `gdnet` command's checks that run before any data is read: flag values, the backend
choice (--backend, GDNET_BACKEND), --plot without matplotlib, and `gdnet eval` of a checkpoint
whose network description does not fit its tensors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from conftest import peak_memory

import gdnet as gd
from gdnet import cli, models, optim
from gdnet.data import datasets
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
