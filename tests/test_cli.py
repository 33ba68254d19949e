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
from conftest import peak_memory, write_tiny_fashion_mnist

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
        # text that is not a number gets the same message (argparse's own would name a function)
        (["train", "--epochs", "two"], "argument --epochs: expected an integer >= 1; got two"),
        (["train", "--lr", "fast"], "argument --lr: expected a finite number > 0; got fast"),
        (["train", "--dropout", "1"], "argument --dropout: expected a finite number in [0, 1); got 1"),
        (["experiments", "depth", "--seed", "-3"], "argument --seed: expected an integer >= 0; got -3"),
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


def test_eval_of_a_checkpoint_without_a_network_says_to_load_it_in_python(capsys, tmp_path):
    gd.train.save(tmp_path / "model.safetensors", models.build_from_spec(SPECS[0]), epoch=1)
    with pytest.raises(SystemExit) as info:
        cli.main(["eval", str(tmp_path / "model.safetensors"), "--backend", "numpy"])
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "was not written by `gdnet train --checkpoint-dir` (its metadata has no 'network' description" in err
    assert "build the model it came from, load it with gd.train.load_into(path, model)" in err


def test_eval_of_a_folder_names_the_checkpoints_in_it(capsys, tmp_path):
    def error(folder):
        with pytest.raises(SystemExit) as info:
            cli.main(["eval", str(folder), "--backend", "numpy"])
        assert info.value.code == 2
        return capsys.readouterr().err

    assert "is a folder; expected a checkpoint file (the best.safetensors or last.safetensors" in error(tmp_path)
    _saved_run(tmp_path, "--epochs", "2")
    assert error(tmp_path) == (f"gdnet eval: error: {tmp_path} is a folder; expected a checkpoint file, e.g. "
                               f"{tmp_path}/last.safetensors\n")
    (tmp_path / "best.safetensors").write_bytes((tmp_path / "last.safetensors").read_bytes())
    assert f"e.g. {tmp_path}/best.safetensors or {tmp_path}/last.safetensors" in error(tmp_path)


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
def _saved_run(folder: Path, *flags: str, epoch: int = 2, record: bool = True, examples: int | None = None) -> Path:
    """``folder``/last.safetensors as `gdnet train *flags --checkpoint-dir folder` leaves it after
    ``epoch`` epochs (the weights untrained: only the states matter here); without ``record``
    as a version that recorded only the network wrote it, with a loader over ``examples``."""
    args = cli.make_parser().parse_args(["train", *flags])
    args.seed = cli.DEFAULT_SEED if args.seed is None else args.seed
    spec = cli.model_spec(args)
    model = models.build_from_spec(spec)
    optimizer = cli.make_optimizer(args, model.parameters())
    schedule = None
    if args.schedule == "cosine":
        schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
        for _ in range(epoch):
            schedule.step()
    path = folder / "last.safetensors"
    loader = None
    if examples is not None:
        dataset = gd.data.ArrayDataset(np.zeros((examples, 1), np.float32), np.zeros(examples, np.int64))
        loader = gd.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    extra = {"network": spec, "run": cli.run_record(args)} if record else {"network": spec}
    gd.train.save(path, model, optimizer, schedule, loader, epoch=epoch, **extra)
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
         "--epochs 4 where the checkpoint's run has --epochs 2 (a cosine schedule anneals to 0 over the run's "
         "--epochs: a longer run is a new run)"),
        (("--hidden", "64", "--schedule", "cosine", "--epochs", "3"), COSINE,
         "--epochs 2 where the checkpoint's run has --epochs 3 (a cosine schedule anneals to 0 over the run's "
         "--epochs: a shorter run is a new run)"),
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
         "--init he; this command asks for MLP 784-100-10: --hidden 100 where the checkpoint has --hidden 64 32; "
         "--activation relu where the checkpoint has --activation tanh. The network flags must match the "
         "checkpoint's: pass those, or start a new run with another --checkpoint-dir"),
        (("--conv", "4", "--hidden", "16", "--dropout", "0.2"), ("--hidden", "16"),
         "trained with --dataset fashion-mnist --conv 4 --hidden 16 --activation relu --init he --dropout 0.2; this "
         "command asks for MLP 784-16-10: no --conv where the checkpoint has --conv 4; --dropout 0.0 where the "
         "checkpoint has --dropout 0.2"),
        ((), ("--dropout", "0.2"), "this command asks for MLP 784-100-10: --dropout 0.2 where the checkpoint has "
                                   "--dropout 0.0. The network flags must match"),
        (("--epochs", "2"), ("--epochs", "5", "--batch-size", "64"),
         "--batch-size 64 where the checkpoint's run has --batch-size 128 (the steps of an epoch). Pass the "
         "checkpoint's value"),
        (("--epochs", "2", "--l2", "1e-4"), ("--epochs", "4"),
         "--l2 0.0 where the checkpoint's run has --l2 0.0001 (the loss)"),
        (("--epochs", "2"), ("--epochs", "4", "--l1", "1e-5"),
         "--l1 1e-05 where the checkpoint's run has --l1 0.0 (the loss)"),
        (("--epochs", "2", "--seed", "3"), ("--epochs", "4", "--seed", "5"),
         "--seed 5 where the checkpoint's run has --seed 3 (the order of the examples)"),
        (("--epochs", "2", "--subset", "2000"), ("--epochs", "4", "--subset", "1000"),
         "--subset 1000 where the checkpoint's run has --subset 2000 (the training examples)"),
        (("--epochs", "2", "--subset", "2000"), ("--epochs", "4"),
         "no --subset where the checkpoint's run has --subset 2000 (the training examples)"),
    ],
    ids=["longer-cosine", "shorter-cosine", "lr-and-schedule", "schedule", "optimizer", "momentum", "nesterov",
         "weight-decay", "rmsprop-momentum", "network", "cnn", "dropout", "batch-size", "l2", "l1", "seed", "subset",
         "no-subset"],
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


def test_resume_of_a_file_that_records_no_run_checks_what_its_states_hold(capsys, tmp_path):
    """A checkpoint written before the command recorded --batch-size, --l1, --l2 and --subset:
    --subset is checked against its loader's examples and --seed against its loader's seed; the
    others cannot be read from it and are taken as given (run_training prints a note)."""
    path = _saved_run(tmp_path, "--epochs", "2", "--seed", "4", record=False, examples=2000)
    err = _train_error(capsys, tmp_path, "--epochs", "4", "--subset", "1000", "--resume", "--checkpoint-dir",
                       str(tmp_path))
    assert "--subset 1000 where the checkpoint's run has --subset 2000 (the training examples)" in err
    err = _train_error(capsys, tmp_path, "--epochs", "4", "--seed", "0", "--resume", "--checkpoint-dir", str(tmp_path))
    assert "--seed 0 where the checkpoint's run has --seed 4" in err
    args = cli.make_parser().parse_args(["train", "--epochs", "4", "--subset", "2000", "--batch-size", "64", "--l2",
                                         "1e-4", "--resume", "--checkpoint-dir", str(tmp_path)])
    assert cli.check_resume(args, gd.train.load(path)) == ["--batch-size 64", "--l1 0.0", "--l2 0.0001"]
    assert cli.checkpoint_seed(gd.train.load(path)) == 4


def test_resume_without_seed_takes_the_checkpoints(tmp_path):
    path = _saved_run(tmp_path, "--epochs", "2", "--seed", "7")
    args = cli.make_parser().parse_args(["train", "--epochs", "4", "--resume", "--checkpoint-dir", str(tmp_path)])
    assert args.seed is None and cli.check_resume(args, gd.train.load(path)) == []
    assert cli.checkpoint_seed(gd.train.load(path)) == 7


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """A data root of a 96-image training set and a 40-image test set (random pixels)."""
    root = tmp_path / "tiny"
    root.mkdir()
    write_tiny_fashion_mnist(root)
    return root


def _tiny_run(root: Path, *flags: str) -> list[str]:
    """`gdnet train` of an MLP 784-8-10 on ``root``'s data; its printed lines."""
    out = io.StringIO()
    cli.run_training(cli.make_parser().parse_args(["train", "--backend", "numpy", "--quiet", "--hidden", "8",
                                                   "--batch-size", "32", "--data-root", str(root), *flags]), out=out)
    return out.getvalue().splitlines()


def test_a_resumed_run_records_and_prints_the_seed_it_uses(tiny_root, tmp_path):
    folder = str(tmp_path / "run")
    _tiny_run(tiny_root, "--epochs", "1", "--seed", "3", "--checkpoint-dir", folder)
    assert gd.train.load(tmp_path / "run" / "last.safetensors").extra["run"] == dict(
        batch_size=32, l1=0.0, l2=0.0, seed=3, train_subset=None)
    lines = _tiny_run(tiny_root, "--epochs", "2", "--resume", "--checkpoint-dir", folder)
    assert lines[0].endswith("numpy on cpu, seed 3") and "after epoch 1" in lines[1]
    last = gd.train.load(tmp_path / "run" / "last.safetensors")
    assert last.epoch == 2 and last.step == 2 * 3 and last.extra["run"]["seed"] == 3  # 96 examples, batch 32


def test_a_finished_cosine_run_says_it_is_a_new_run_to_train_longer(tiny_root, tmp_path):
    pytest.importorskip("matplotlib")
    folder = str(tmp_path / "run")
    flags = ("--epochs", "1", "--schedule", "cosine", "--checkpoint-dir", folder)
    _tiny_run(tiny_root, *flags)
    lines = _tiny_run(tiny_root, *flags, "--resume", "--plot", str(tmp_path / "curves.png"))
    assert ("is already trained for 1 epochs (--epochs 1): nothing to train; its cosine schedule has annealed to 0 "
            "over those epochs; to train longer, start a new run (with another --checkpoint-dir) with a larger "
            "--epochs") in lines[0]
    assert lines[1] == f"no plot written to {tmp_path / 'curves.png'}: --plot draws the epochs this command trains"
    assert not (tmp_path / "curves.png").exists()
    lines = _tiny_run(tiny_root, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "constant"))
    lines = _tiny_run(tiny_root, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "constant"), "--resume")
    assert lines[0].endswith("nothing to train; pass a larger --epochs to continue")


@pytest.mark.parametrize("checkpoints", [True, False], ids=["checkpoint-dir", "no-checkpoint-dir"])
def test_ctrl_c_in_training_prints_where_the_run_stands_and_exits_130(monkeypatch, capsys, tiny_root, tmp_path,
                                                                     checkpoints):
    def interrupt(self, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt
        printed(self, epoch, logs)

    printed = cli._EpochPrinter.on_epoch_end
    monkeypatch.setattr(cli._EpochPrinter, "on_epoch_end", interrupt)
    folder = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--backend", "numpy", "--quiet", "--hidden", "8", "--epochs", "3", "--data-root",
                  str(tiny_root), *(["--checkpoint-dir", str(folder)] if checkpoints else [])])
    assert info.value.code == 130
    err = capsys.readouterr().err
    if checkpoints:
        assert err == (f"gdnet train: interrupted in epoch 2; the last checkpoint is epoch 1 in {folder}: continue "
                       "with --resume\n")
    else:
        assert err == "gdnet train: interrupted in epoch 2\n"


def test_ctrl_c_before_training_is_one_line_too(monkeypatch, capsys):
    def interrupt(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load_datasets", interrupt)
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--backend", "numpy"])
    assert info.value.code == 130 and capsys.readouterr().err == "gdnet train: interrupted\n"


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
        ("", "is a folder; expected the name of an image file in it, e.g. {tmp}/curves.png"),
        ("file/x.png", "'{tmp}/file' is a file, not a folder; expected a folder"),
    ],
    ids=["format", "missing-folder", "a-folder", "under-a-file"],
)
def test_a_plot_that_cannot_be_written_fails_before_training(capsys, tmp_path, name, expected):
    pytest.importorskip("matplotlib")
    (tmp_path / "file").write_text("not a folder")
    err = _train_error(capsys, tmp_path, "--epochs", "1", "--plot", str(tmp_path / name))
    assert f"--plot {tmp_path / name}" in err and expected.format(tmp=tmp_path) in err
    if name == "curves.txt":
        assert ".png" in err and ".svg" in err and ".pdf" in err


def test_an_empty_plot_name_is_an_error(capsys, tmp_path):
    err = _train_error(capsys, tmp_path, "--epochs", "1", "--plot", "")
    assert "--plot '': an empty name; expected the name of an image file, e.g. curves.png" in err


UNWRITABLE = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc: a folder no one can write in")


@UNWRITABLE
@pytest.mark.parametrize("flags, what", [(("--plot", "/proc/x.png"), "--plot /proc/x.png"),
                                         (("--checkpoint-dir", "/proc/ck"), "--checkpoint-dir /proc/ck")],
                         ids=["plot", "checkpoint-dir"])
def test_a_folder_that_cannot_be_written_fails_before_training(capsys, tmp_path, flags, what):
    if flags[0] == "--plot":
        pytest.importorskip("matplotlib")
    err = _train_error(capsys, tmp_path, "--epochs", "1", *flags)
    assert f"{what}: the folder '/proc' cannot be written (" in err
    assert "expected a folder this user can write files in" in err


def test_a_checkpoint_dir_in_a_file_fails_before_training(capsys, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    err = _train_error(capsys, tmp_path, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "file" / "ck"))
    assert (f"--checkpoint-dir {tmp_path}/file/ck: '{tmp_path}/file' is a file, not a folder; expected a folder to "
            f"hold '{tmp_path}/file/ck'") in err
    err = _train_error(capsys, tmp_path, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "file"))
    assert f"'{tmp_path}/file' is a file, not a folder; expected a folder" in err


def test_experiments_out_must_be_a_folder(capsys, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as info:
        cli.main(["experiments", "scaling", "--quick", "--backend", "numpy", "--out", str(tmp_path / "file")])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert err == (f"gdnet experiments: error: --out {tmp_path}/file: '{tmp_path}/file' is a file, not a folder; "
                   "expected a folder\n") and out == ""


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


def test_a_train_subset_beyond_the_training_set_is_an_error(capsys, tiny_root):
    # a slice would quietly take all 96 examples of this set and train on fewer than asked
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--backend", "numpy", "--epochs", "1", "--train-subset", "97", "--data-root",
                  str(tiny_root)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--train-subset 97: the training set has 96 examples; expected at most 96" in err


@pytest.mark.parametrize("seconds, shown", [(2.345, "2.3 s"), (0.5, "0.5 s"), (0.095, "0.1 s"), (0.0417, "41.7 ms"),
                                            (0.000812, "0.812 ms")])
def test_epoch_times_of_small_runs_are_not_zero(seconds, shown):
    assert cli._seconds(seconds) == shown
