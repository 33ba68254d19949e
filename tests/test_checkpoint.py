"""Checkpoints: round trips of every state, resuming bit for bit, atomic writes, refusing damaged,
truncated, pickled and mismatched files, and weights shared with PyTorch through safetensors."""

from __future__ import annotations

import io
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as safetensors_numpy
from conftest import dead_process_id, make_stale, peak_memory
from gdnet.backends import host
from test_fit import CLASSES, FEATURES, loaders, mlp, setup, weights
from test_lr_scheduler import ROW, STEPS, _gdnet_optimizer, _run

import gdnet as gd
from gdnet.data.idx import write_idx
from gdnet.nn import functional as F
from gdnet.optim import lr_scheduler
from gdnet.train import checkpoint as checkpoint_module

CheckpointError = gd.train.CheckpointError


def net():
    """An MLP with batch norm (buffers) and dropout (device draws)."""
    return gd.nn.Sequential(gd.nn.Linear(FEATURES, 16), gd.nn.BatchNorm1d(16), gd.nn.ReLU(), gd.nn.Dropout(0.2),
                            gd.nn.Linear(16, CLASSES))


def trained(callbacks=()):
    """(model with dropout and batch norm, Adam, StepLR, loader) after two epochs of fit."""
    gd.manual_seed(0)
    model = net()
    optimizer = gd.optim.Adam(model.parameters(), lr=0.01)
    schedule = lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    train, _ = loaders(validation=False)
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, scheduler=schedule, callbacks=callbacks,
                 verbose=0)
    return model, optimizer, schedule, train


def assert_same_state(a, b, path="state"):
    """Equal nested states: arrays bit for bit (on the host), everything else with ==, types too."""
    if hasattr(a, "shape") and not isinstance(a, (int, float)):
        x, y = host.to_numpy(a), host.to_numpy(b)
        assert x.dtype == y.dtype and np.array_equal(x, y), path
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b), path
        for key in a:
            assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, path


# -- round trips ---------------------------------------------------------------------------------
def test_round_trip_of_model_optimizer_schedule_loader_and_generators(backend, tmp_path):
    model, optimizer, schedule, train = trained()
    path = tmp_path / "run.safetensors"
    gd.train.save(path, model, optimizer, schedule, train, epoch=2, step=16, lr=0.01, hidden=(16,), note="first")
    host_state, device_state = gd._backend.host_rng().get_state(), gd.device_rng().get_state()

    gd.manual_seed(5)  # everything below starts elsewhere
    other = net()
    other_optimizer = gd.optim.Adam(other.parameters(), lr=0.5)
    other_schedule = lr_scheduler.StepLR(other_optimizer, step_size=3, gamma=0.1)
    other_loader, _ = loaders(validation=False)
    other_loader.load_state_dict({**other_loader.state_dict(), "seed": 7, "epoch": 0})
    gd.device_rng().normal((3,), gd.default_float())
    checkpoint = gd.train.load_into(path, other, other_optimizer, other_schedule, other_loader)

    assert (checkpoint.epoch, checkpoint.step) == (2, 16)
    assert checkpoint.extra == {"lr": 0.01, "hidden": (16,), "note": "first"}
    assert checkpoint.gdnet_version == gd.__version__ and checkpoint.backend == backend.describe()
    assert checkpoint.architecture == checkpoint_module.architecture(model)
    assert_same_state(dict(other.state_dict()), dict(model.state_dict()), "model")
    assert all(p.device == backend.device for p in other.parameters())
    assert_same_state(other_optimizer.state_dict(), optimizer.state_dict(), "optimizer")
    assert all(v.device == backend.device for s in other_optimizer.state.values() for v in s.values()
               if hasattr(v, "device"))
    assert_same_state(other_schedule.state_dict(), schedule.state_dict(), "scheduler")
    assert_same_state(other_loader.state_dict(), train.state_dict(), "loader")
    assert_same_state(gd._backend.host_rng().get_state(), host_state, "host generator")
    assert_same_state(gd.device_rng().get_state(), device_state, "device generator")


@pytest.mark.parametrize("row", ROW)
def test_every_schedule_state_survives_a_file(row, tmp_path):
    """Mid-run, each schedule of test_lr_scheduler (whose own round trip shows that equal
    states continue equally) comes back from a checkpoint with the same state, types included."""
    name, build, drive = ROW[row]
    optimizer = _gdnet_optimizer(name)
    schedule = build(lr_scheduler, optimizer)
    _run(optimizer, schedule, drive, STEPS // 2)
    model = gd.nn.Linear(2, 1)
    gd.train.save(tmp_path / "schedule.safetensors", model, optimizer, schedule)
    fresh = _gdnet_optimizer(name)
    resumed = build(lr_scheduler, fresh)
    gd.train.load_into(tmp_path / "schedule.safetensors", model, fresh, resumed)
    assert_same_state(resumed.state_dict(), schedule.state_dict())
    assert_same_state(fresh.state_dict(), optimizer.state_dict())


def test_resumed_training_equals_uninterrupted_training_bit_for_bit(tmp_path):
    """Two epochs with ModelCheckpoint, new objects from another seed, load, two more epochs: the
    same weights, to the bit, as four epochs in one go (dropout draws, shuffles, batch-norm
    statistics, Adam and the schedule included)."""
    model, optimizer, schedule, train = trained()
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=4, initial_epoch=2, scheduler=schedule,
                           verbose=0)

    saver = gd.train.ModelCheckpoint(tmp_path, save_best=False)
    trained(callbacks=[saver])  # the run is interrupted here: only its checkpoint goes on

    gd.manual_seed(123)
    resumed = net()
    resumed_optimizer = gd.optim.Adam(resumed.parameters(), lr=0.01)
    resumed_schedule = lr_scheduler.StepLR(resumed_optimizer, step_size=1, gamma=0.5)
    resumed_train = gd.data.DataLoader(loaders(validation=False)[0].dataset, batch_size=32, shuffle=True, seed=99)
    checkpoint = gd.train.load_into(saver.last_path, resumed, resumed_optimizer, resumed_schedule, resumed_train)
    resumed_history = gd.train.fit(resumed, F.cross_entropy, resumed_optimizer, resumed_train, epochs=4,
                                   initial_epoch=checkpoint.epoch, scheduler=resumed_schedule, verbose=0)

    assert resumed_history["loss"] == history["loss"] and resumed_history["lr"] == history["lr"]
    for name, value in weights(model).items():
        assert np.array_equal(value, weights(resumed)[name]), name


# -- atomic writes -------------------------------------------------------------------------------
def _write_two(tmp_path):
    """A checkpoint of a model at ``path``, and a second model with other weights."""
    gd.manual_seed(0)
    first = mlp()
    path = tmp_path / "model.safetensors"
    gd.train.save(path, first)
    gd.manual_seed(1)
    return path, first, mlp()


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_save_leaves_the_previous_checkpoint(failing, tmp_path, monkeypatch):
    path, first, second = _write_two(tmp_path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(f"simulated failure in os.{failing}")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="simulated failure"):
        gd.train.save(path, second)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # the temporary file is gone
    assert_same_state(dict(gd.train.load(path).model_state), weights(first))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_while_saving_leaves_the_previous_checkpoint(tmp_path):
    """The child saves once, then is killed (SIGKILL, no clean-up) in the middle of a second
    save: after writing the new bytes, before the rename."""
    path = tmp_path / "model.safetensors"
    script = textwrap.dedent(f"""
        import os, signal
        import gdnet as gd
        gd.manual_seed(0)
        small = gd.nn.Sequential(gd.nn.Linear(8, 16), gd.nn.ReLU(), gd.nn.Linear(16, 4))
        gd.train.save({str(path)!r}, small)
        large = gd.nn.Sequential(gd.nn.Linear(8, 16), gd.nn.ReLU(), gd.nn.Linear(16, 4), gd.nn.Linear(4, 4096))
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        gd.train.save({str(path)!r}, large)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    gd.manual_seed(0)
    small = mlp()
    assert_same_state(dict(gd.train.load(path).model_state), weights(small))
    partial = [p for p in tmp_path.iterdir() if p.name != path.name]
    assert len(partial) == 1 and partial[0].name.startswith(".model.safetensors.")  # left by the killed writer
    assert partial[0].stat().st_size > path.stat().st_size
    if os.name == "posix":  # the next save, once the file has aged, removes it
        make_stale(partial[0])
        gd.train.save(path, small)
        assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.skipif(os.name != "posix", reason="asks whether a process exists with os.kill(pid, 0)")
def test_a_save_removes_the_temporary_files_of_dead_processes_only(tmp_path):
    dead, alive = dead_process_id(), os.getppid()
    names = {
        f".last.safetensors.{dead}.0123abcd.tmp": "removed",
        f".best.safetensors.{dead}.89abcdef.tmp": "removed",  # any file of the folder
        f".last.safetensors.{alive}.0123abcd.tmp": "kept",  # its process runs
        f".last.safetensors.{os.getpid()}.0123abcd.tmp": "kept",  # this process's (another thread's save)
        f".recent.safetensors.{dead}.0123abcd.tmp": "kept",  # changed lately: perhaps another machine's
        f"last.safetensors.{dead}.0123abcd.tmp": "kept",  # not a name atomic_write gives
        f".last.safetensors.{dead}.tmp": "kept",
        ".train-images-idx3-ubyte.gz.k3_9zq0a.part": "removed",  # an earlier version's mkstemp name
        ".recent.gz.k3_9zq0a.part": "kept",  # no process id: only its age tells
        ".last.safetensors.k3_9zq0a.partial": "kept",
        "notes.txt": "kept",
    }
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
        if "recent" not in name:
            make_stale(tmp_path / name)
    gd.train.save(tmp_path / "model.safetensors", mlp())
    kept = {p.name for p in tmp_path.iterdir()} - {"model.safetensors"}
    assert kept == {name for name, fate in names.items() if fate == "kept"}


def test_a_model_without_tensors_round_trips(tmp_path):
    """Metadata and no tensors at all (safetensors 0.4.3 and older wrote such a header as invalid
    JSON)."""
    gd.train.save(tmp_path / "empty.safetensors", gd.nn.Sequential(gd.nn.ReLU()), epoch=4, note="no weights")
    checkpoint = gd.train.load(tmp_path / "empty.safetensors")
    assert (len(checkpoint.model_state), checkpoint.epoch, checkpoint.extra) == (0, 4, {"note": "no weights"})
    gd.train.load_into(tmp_path / "empty.safetensors", gd.nn.Sequential(gd.nn.Tanh()))


def test_saving_into_a_missing_directory_or_unstorable_values(tmp_path):
    model = mlp()
    with pytest.raises(FileNotFoundError, match="the directory .*missing.* does not exist"):
        gd.train.save(tmp_path / "missing" / "model.safetensors", model)
    with pytest.raises(CheckpointError, match="cannot store the function at extra.loss"):
        gd.train.save(tmp_path / "model.safetensors", model, loss=F.cross_entropy)
    assert list(tmp_path.iterdir()) == []


# -- refusing bad files --------------------------------------------------------------------------
@pytest.fixture
def small_checkpoint(tmp_path):
    """A small complete checkpoint's bytes (a linear model, SGD with momentum, schedule, loader)."""
    gd.manual_seed(0)
    model = gd.nn.Linear(FEATURES, CLASSES)
    optimizer = gd.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = lr_scheduler.ReduceLROnPlateau(optimizer)
    train, _ = loaders(n=64, validation=False)
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, scheduler=schedule, verbose=0)
    path = tmp_path / "small.safetensors"
    gd.train.save(path, model, optimizer, schedule, train, epoch=1)
    return path.read_bytes()


def _load_bytes(data: bytes):
    return gd.train.load(io.BytesIO(data))


def _accepted(variants) -> list:
    """The labels of the (label, bytes) variants that load without a CheckpointError."""
    accepted = []
    for label, data in variants:
        try:
            _load_bytes(data)
        except CheckpointError:
            continue
        accepted.append(label)
    return accepted


def test_every_truncation_is_refused(small_checkpoint):
    cuts = ((length, small_checkpoint[:length]) for length in range(len(small_checkpoint)))
    assert _accepted(cuts) == []


def test_every_flipped_byte_is_refused(small_checkpoint):
    def flipped():
        for position in range(len(small_checkpoint)):
            for flip in (0x01, 0x80):
                data = bytearray(small_checkpoint)
                data[position] ^= flip
                yield (position, flip), bytes(data)

    assert _accepted(flipped()) == []


def test_what_a_damaged_file_error_says(small_checkpoint, tmp_path):
    checkpoint = _load_bytes(small_checkpoint)
    assert checkpoint.epoch == 1
    with pytest.raises(CheckpointError, match="is truncated: its tensors need"):
        _load_bytes(small_checkpoint[:-1])
    with pytest.raises(CheckpointError, match="header length says"):
        _load_bytes(small_checkpoint[:100])
    data = bytearray(small_checkpoint)
    data[-1] ^= 0x01  # the last tensor's last byte
    with pytest.raises(CheckpointError, match=r"the bytes of tensor '.*' do not match their SHA-256"):
        _load_bytes(bytes(data))
    data = bytearray(small_checkpoint)
    position = small_checkpoint.index(b'\\"epoch\\":1') + len(b'\\"epoch\\":')
    data[position] = ord("7")
    with pytest.raises(CheckpointError, match="its metadata does not match its SHA-256"):
        _load_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="<file object> is not a safetensors file: 0 bytes, too short"):
        _load_bytes(b"")
    (tmp_path / "cut.safetensors").write_bytes(small_checkpoint[:-8])
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'cut.safetensors'} is truncated"):
        gd.train.load(tmp_path / "cut.safetensors")
    with pytest.raises(FileNotFoundError):
        gd.train.load(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="not a JSON object"):
        _load_bytes(b"\x04\x00\x00\x00\x00\x00\x00\x00oops")


# -- files that would cost memory or time --------------------------------------------------------
_ZERO_SIZE = b'{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'


def _crafted(header: bytes, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors file of this JSON header (padded to 8 bytes) and data; ``length`` overrides
    the length prefix."""
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def _zero_size_tensors(count: int) -> bytes:
    return _crafted(b"{" + b",".join(b'"t%d":' % i + _ZERO_SIZE for i in range(count)) + b"}")


def _with_gdnet_metadata(text: str) -> bytes:
    """A file whose gdnet metadata is ``text``, with the SHA-256 a writer would give it."""
    metadata = {"format": "pt", "gdnet": text}
    metadata["gdnet_sha256"] = checkpoint_module._metadata_digest(metadata)
    return safetensors_numpy.save({}, metadata=metadata)


@pytest.mark.parametrize(
    "make, expected, held",
    [
        (lambda: _crafted(b'{"a":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}', bytes(64)),
         r"is truncated: its tensors need 4000000000 bytes of data and the file holds 64", 4096),
        (lambda: _crafted(b"{}", length=2**63), r"header length says 9223372036854775808 bytes", 4096),
        (lambda: _zero_size_tensors(1_000_000), r"header holds up to 7000001 JSON values; gdnet reads at most 1048576",
         None),
        (lambda: _crafted(b'{"__metadata__":' + b"[" * 200_000 + b"]" * 200_000 + b"}"), "nested too deeply", None),
        (lambda: _with_gdnet_metadata("[" * 200_000 + "]" * 200_000), "the gdnet metadata is nested too deeply",
         None),
        (lambda: _with_gdnet_metadata('{"format":"gdnet.checkpoint","format_version":1}'),
         r"the metadata is not a gdnet checkpoint's \(KeyError: 'tensors'\)", None),
    ],
    ids=["huge-tensor", "huge-header-length", "million-tensors", "deep-json", "deep-metadata", "metadata-lacks-keys"],
)
def test_crafted_files_are_refused_within_the_memory_they_claim(tmp_path, make, expected, held):
    """Each file is refused with a CheckpointError (never a RecursionError or KeyError), and
    loading it takes at most about twice the bytes it holds (``held``, or its whole size)."""
    content = make()
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(content)

    def load():
        with pytest.raises(CheckpointError, match=expected):
            gd.train.load(path)
        with pytest.raises(CheckpointError, match=expected):
            gd.train.load(io.BufferedReader(io.BytesIO(content)))

    assert peak_memory(load) < 2 * (held or len(content)) + (256 << 10)


def test_a_sparse_file_is_refused_from_its_header_unread(tmp_path):
    """A 6 GiB sparse file whose header length claims all of it: refused by the cap on header
    sizes, with nothing read after the length."""
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", 6 << 30))
        file.truncate((6 << 30) + 8)

    def load():
        with pytest.raises(CheckpointError, match=r"header length says 6442450944 bytes; safetensors headers hold "
                                                  r"at most 100000000"):
            gd.train.load(path)

    assert peak_memory(load) < 256 << 10


def test_too_many_tensors_are_refused():
    data = _zero_size_tensors(checkpoint_module.st.MAX_TENSORS + 1)
    with pytest.raises(CheckpointError, match="lists 32769 tensors; gdnet reads at most 32768"):
        _load_bytes(data)


class _Endless(io.RawIOBase):
    """A stream of ``head`` and then zero bytes without end."""

    def __init__(self, head: bytes):
        self.head = head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = len(buffer)
        taken, self.head = self.head[:count], self.head[count:]
        buffer[: len(taken)] = taken
        buffer[len(taken):count] = bytes(count - len(taken))
        return count


def test_a_stream_that_never_ends_is_read_only_as_far_as_its_header_claims():
    header = _crafted(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}')
    for head in (header, b""):
        with pytest.raises(CheckpointError, match="more bytes follow the last tensor|does not start with"):
            gd.train.load(io.BufferedReader(_Endless(head)))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path):
    link = tmp_path / "last.safetensors"
    link.symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="last.safetensors is a character device, not a regular file"):
        gd.train.load(link)
    with pytest.raises(CheckpointError, match="last.safetensors is a character device"):
        gd.train.load_into(link, mlp())
    with pytest.raises(CheckpointError, match="is a directory, not a regular file"):
        gd.train.load(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")  # nobody writes to it: opening it must not wait for a writer
        with pytest.raises(CheckpointError, match=r"is a FIFO \(named pipe\), not a regular file"):
            gd.train.load(tmp_path / "fifo")


def test_a_header_only_the_package_refuses_is_a_checkpoint_error(tmp_path):
    """gdnet's checks pass a size beyond any integer the package reads (2**70 by 0 elements);
    the package's refusal comes back as a CheckpointError naming it."""
    content = _crafted(b'{"a":{"dtype":"F32","shape":[1180591620717411303424,0],"data_offsets":[0,0]}}')
    (tmp_path / "huge-shape.safetensors").write_bytes(content)
    for source in (tmp_path / "huge-shape.safetensors", io.BytesIO(content)):
        with pytest.raises(CheckpointError, match=r"is damaged: the safetensors package refuses it \(.+\)"):
            gd.train.load(source)


def _replacing_after_the_check(monkeypatch, path: Path, other: bytes) -> None:
    """Once gdnet has checked the header of ``path``, another file takes its name."""
    replacement = path.with_name("replacement")
    replacement.write_bytes(other)
    check = checkpoint_module._state

    def check_then_replace(source, metadata):
        os.replace(replacement, path)
        return check(source, metadata)

    monkeypatch.setattr(checkpoint_module, "_state", check_then_replace)


@pytest.mark.parametrize("kind", ["gdnet", "foreign"])
def test_the_package_reads_the_file_that_was_checked(kind, tmp_path, monkeypatch):
    """The package opens the checked file through its descriptor (/proc/self/fd, /dev/fd), so a
    file put in its place after the check is not read; where a platform has no such path, the
    tensors and metadata the package read are compared with the checked header."""
    path = tmp_path / "model.safetensors"
    if kind == "gdnet":
        gd.train.save(path, mlp())
        gd.train.save(tmp_path / "other.safetensors", gd.nn.Sequential(gd.nn.Linear(FEATURES, 3)))
        expected = r"changed while it was read: its metadata is not the one checked"
    else:
        safetensors_numpy.save_file({"a": np.zeros(2, "float32")}, path)
        safetensors_numpy.save_file({"a": np.ones(3, "float32")}, tmp_path / "other.safetensors")
        expected = r"changed while it was read: tensor 'a' is float32 \(3,\); the header checked said F32 \(2,\)"
    original, other = path.read_bytes(), (tmp_path / "other.safetensors").read_bytes()
    with open(path, "rb") as file:
        by_descriptor = checkpoint_module.reopening_path(file, path) != str(path)
    if by_descriptor:
        checked = dict(_load_bytes(original).model_state)
        _replacing_after_the_check(monkeypatch, path, other)
        assert_same_state(dict(gd.train.load(path).model_state), checked)
        assert path.read_bytes() == other  # the name did change hands
        monkeypatch.undo()
        path.write_bytes(original)
    _replacing_after_the_check(monkeypatch, path, other)
    monkeypatch.setattr(checkpoint_module, "reopening_path", lambda file, name: os.fspath(name))
    with pytest.raises(CheckpointError, match=expected):
        gd.train.load(path)


@pytest.mark.parametrize("opened", [False, True], ids=["path", "file-object"])
def test_loading_costs_the_tensors_once_from_a_path_twice_from_a_file_object(opened, tmp_path):
    """The package maps a path's file and copies each tensor out once; a file object is read
    whole, then parsed by the package (a copy of its tensors)."""
    model = gd.nn.Linear(1024, 1024)  # 4 MiB of weights
    gd.train.save(tmp_path / "large.safetensors", model)
    size = (tmp_path / "large.safetensors").stat().st_size
    if opened:
        with open(tmp_path / "large.safetensors", "rb") as file:
            peak = peak_memory(lambda: gd.train.load(file))
    else:
        peak = peak_memory(lambda: gd.train.load(tmp_path / "large.safetensors"))
    # a quarter more: the check for NaN and inf holds one bool per float32 value
    assert size < peak < (2.25 if opened else 1.25) * size + (256 << 10)


class _Trap:
    """Unpickling this creates a marker file: the proof that loading ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_renamed_to_safetensors_is_refused_unopened(tmp_path):
    marker = tmp_path / "code-ran"
    for protocol in (2, 4, 5):
        path = tmp_path / f"weights-{protocol}.safetensors"
        path.write_bytes(pickle.dumps({"0.weight": _Trap(marker)}, protocol=protocol))
        with pytest.raises(CheckpointError, match=f"pickle file \\(protocol {protocol}\\).*never unpickles"):
            gd.train.load(path)
        with pytest.raises(CheckpointError, match="pickle file"):
            gd.train.load_into(path, mlp())
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Trap(marker)))  # the trap is armed: unpickling does create the marker
    assert marker.exists()


def test_a_torch_save_file_renamed_to_safetensors_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.safetensors"
    torch.save({"0.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="zip archive.*safetensors.torch.save_file"):
        gd.train.load(path)


def test_another_architecture_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    gd.train.save(path, mlp())
    wider = gd.nn.Sequential(gd.nn.Linear(FEATURES, 32), gd.nn.ReLU(), gd.nn.Linear(32, CLASSES))
    before = weights(wider)
    with pytest.raises(CheckpointError, match=r"another architecture than this Sequential: '0.weight' has shape "
                                              r"\(16, 8\) in the checkpoint and \(32, 8\) in the model; '0.bias'"):
        gd.train.load_into(path, wider)
    assert_same_state(weights(wider), before)  # nothing changed
    deeper = gd.nn.Sequential(gd.nn.Linear(FEATURES, 16), gd.nn.ReLU(), gd.nn.Linear(16, 16), gd.nn.ReLU(),
                              gd.nn.Linear(16, CLASSES))
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: \['4.weight', '4.bias'\]; '2.weight' "
                                              r"has shape \(4, 16\) in the checkpoint and \(16, 16\)"):
        gd.train.load_into(path, deeper)
    with pytest.raises(CheckpointError, match=r"not in the model: \['2.weight', '2.bias'\]"):
        gd.train.load_into(path, gd.nn.Sequential(gd.nn.Linear(FEATURES, 16)))
    with pytest.raises(CheckpointError, match="'0.weight' is float32 in the checkpoint and float64 in the model"):
        gd.train.load_into(path, mlp().to("float64"))


def test_missing_or_mismatched_states_are_named(tmp_path):
    model, optimizer, train, _ = setup()
    path = tmp_path / "model.safetensors"
    gd.train.save(path, model)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        gd.train.load_into(path, model, optimizer)
    gd.train.save(path, model, optimizer, loader=train)
    adam = gd.optim.Adam(model.parameters())
    with pytest.raises(CheckpointError, match="holds the state of the optimizer SGD; this optimizer is Adam"):
        gd.train.load_into(path, model, adam)
    first_layer = gd.optim.SGD(list(model.children())[0].parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match="the optimizer state does not fit this optimizer: .*parameter groups"):
        gd.train.load_into(path, model, first_layer)
    other_data = gd.data.DataLoader(loaders(n=100)[0].dataset, batch_size=10)
    with pytest.raises(CheckpointError, match="the loader state does not fit this loader: .*256 examples"):
        gd.train.load_into(path, model, loader=other_data)


def _snapshot(model, optimizer, schedule, loader) -> dict:
    """Host copies of everything load_into may change."""
    return {"model": weights(model), "optimizer": host_state(optimizer.state_dict()),
            "scheduler": schedule.state_dict(), "loader": loader.state_dict(),
            "rng": (gd._backend.host_rng().get_state(), host_state(gd.device_rng().get_state()))}


def host_state(value):
    """``value`` with its arrays copied to the host (so later in-place steps cannot reach them)."""
    if isinstance(value, dict):
        return type(value)((k, host_state(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(host_state(v) for v in value)
    return host.to_numpy(value) if hasattr(value, "shape") and not isinstance(value, (int, float)) else value


@pytest.mark.parametrize("failing", ["loader", "random generator"])
def test_a_failed_load_into_changes_nothing(backend, failing, tmp_path, monkeypatch):
    """The optimizer and the scheduler fit; the loader (another dataset) or the generators do
    not: the model, optimizer (lr, momentum buffers), schedule, loader and generators are all
    as before the call."""
    model, optimizer, schedule, train = trained()
    path = tmp_path / "run.safetensors"
    gd.train.save(path, model, optimizer, schedule, train, epoch=2)

    gd.manual_seed(5)
    other = net()
    other_optimizer = gd.optim.Adam(other.parameters(), lr=0.3)
    other_schedule = lr_scheduler.StepLR(other_optimizer, step_size=3, gamma=0.1)
    size = 100 if failing == "loader" else len(train.dataset)
    other_loader = gd.data.DataLoader(loaders(n=size, validation=False)[0].dataset, batch_size=10, shuffle=True,
                                      seed=4)
    gd.train.fit(other, F.cross_entropy, other_optimizer, other_loader, epochs=1, scheduler=other_schedule, verbose=0)
    if failing == "random generator":
        def refuse(state):
            raise ValueError("not a generator state")

        monkeypatch.setattr(checkpoint_module, "_restore_rng", refuse)
    before = _snapshot(other, other_optimizer, other_schedule, other_loader)
    with pytest.raises(CheckpointError, match=f"the {failing} state does not fit this {failing}"):
        gd.train.load_into(path, other, other_optimizer, other_schedule, other_loader)
    assert_same_state(_snapshot(other, other_optimizer, other_schedule, other_loader), before)
    assert other_optimizer.param_groups[0]["lr"] == before["optimizer"]["param_groups"][0]["lr"] != 0.01


def test_a_checkpoint_from_a_newer_format_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "FORMAT_VERSION", 2)
    gd.train.save(tmp_path / "new.safetensors", mlp())
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="checkpoint format 2, newer than this gdnet"):
        gd.train.load(tmp_path / "new.safetensors")


# -- files of earlier versions -------------------------------------------------------------------
FORMAT_1 = Path(__file__).parent / "data" / "checkpoint-format-1.safetensors"


def _format_1_objects():
    """The model (batch norm: float32 and int64 buffers), SGD with momentum buffers, a stepped
    StepLR, a shuffling loader and extra arrays (bool, int16, float16) of
    tests/data/checkpoint-format-1.safetensors, every value set exactly (no float arithmetic
    that could round differently elsewhere)."""
    gd.manual_seed(0)
    model = gd.nn.Sequential(gd.nn.Linear(3, 4), gd.nn.BatchNorm1d(4), gd.nn.ReLU(), gd.nn.Linear(4, 2))
    optimizer = gd.optim.SGD(model.parameters(), lr=0.25, momentum=0.5)
    for i, parameter in enumerate(model.parameters()):
        grad = np.arange(math.prod(parameter.shape), dtype="float32").reshape(parameter.shape) / 8 + i
        parameter.grad = gd.tensor(grad)
    optimizer.step()  # momentum buffers: the gradients above
    state = {}
    for name, value in weights(model).items():
        kind = value.dtype.name
        counted = np.arange(value.size).reshape(value.shape) / 4
        state[name] = counted.astype(kind) if kind.startswith("float") else np.full(value.shape, 7, dtype=kind)
    model.load_state_dict(state)
    schedule = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(3):
        schedule.step()
    data = gd.data.ArrayDataset(np.arange(30, dtype="float32").reshape(10, 3), np.arange(10) % 2)
    loader = gd.data.DataLoader(data, batch_size=4, shuffle=True, seed=3)
    for _ in loader:
        break
    extra = {"note": "format 1", "hidden": (4,), "mask": np.array([True, False, True]),
             "counts": np.arange(-2, 4, dtype="int16").reshape(2, 3), "half": np.array([0.5, -1.25], dtype="float16")}
    return model, optimizer, schedule, loader, extra


def test_a_checkpoint_written_by_gdnet_s_own_writer_still_loads(tmp_path):
    """tests/data/checkpoint-format-1.safetensors was written by ``gd.train.save`` of
    _format_1_objects() while gdnet wrote the format itself (tensors in the model's order, the
    header padded with spaces): it loads, every state equal to the objects', and into fresh ones;
    saved again, it loads the same."""
    model, optimizer, schedule, loader, extra = _format_1_objects()
    checkpoint = gd.train.load(FORMAT_1)
    assert (checkpoint.epoch, checkpoint.step, checkpoint.gdnet_version) == (3, 12, "0.1.0")
    assert_same_state(checkpoint.extra, extra, "extra")
    assert "'hidden': (4,), 'mask': <array bool (3,)>" in repr(checkpoint)  # a 1-tuple prints as one
    assert_same_state(dict(checkpoint.model_state), weights(model), "model")
    assert_same_state(host_state(checkpoint.optimizer_state), host_state(optimizer.state_dict()), "optimizer")
    assert_same_state(checkpoint.scheduler_state, schedule.state_dict(), "scheduler")
    assert_same_state(checkpoint.loader_state, loader.state_dict(), "loader")

    gd.manual_seed(1)
    fresh = gd.nn.Sequential(gd.nn.Linear(3, 4), gd.nn.BatchNorm1d(4), gd.nn.ReLU(), gd.nn.Linear(4, 2))
    fresh_optimizer = gd.optim.SGD(fresh.parameters(), lr=0.25, momentum=0.5)
    fresh_schedule = lr_scheduler.StepLR(fresh_optimizer, step_size=2, gamma=0.5)
    fresh_loader = gd.data.DataLoader(loader.dataset, batch_size=4, shuffle=True, seed=9)
    gd.train.load_into(FORMAT_1, fresh, fresh_optimizer, fresh_schedule, fresh_loader)
    assert_same_state(weights(fresh), weights(model), "model")
    assert_same_state(host_state(fresh_optimizer.state_dict()), host_state(optimizer.state_dict()), "optimizer")
    assert_same_state(fresh_schedule.state_dict(), schedule.state_dict(), "scheduler")
    assert_same_state(fresh_loader.state_dict(), loader.state_dict(), "loader")

    gd.train.save(tmp_path / "again.safetensors", fresh, fresh_optimizer, fresh_schedule, fresh_loader, epoch=3,
                  step=12, **extra)
    again = gd.train.load(tmp_path / "again.safetensors")
    for what in ("model_state", "optimizer_state", "scheduler_state", "loader_state", "extra", "architecture"):
        assert_same_state(host_state(getattr(again, what)), host_state(getattr(checkpoint, what)), what)


# -- other programs' safetensors -----------------------------------------------------------------
def test_the_safetensors_library_reads_what_gdnet_writes_and_back(tmp_path):
    numpy_io = safetensors_numpy
    model, optimizer, train, _ = setup()
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, verbose=0)
    gd.train.save(tmp_path / "gdnet.safetensors", model, optimizer)
    read = numpy_io.load_file(tmp_path / "gdnet.safetensors")
    for name, value in weights(model).items():
        assert np.array_equal(read[name], value)
    assert sorted(k for k in read if "/" in k) == [f"optimizer/state/{i}/momentum_buffer" for i in range(4)]
    arrays = {"a": np.arange(6, dtype="int16").reshape(2, 3), "b": np.array(True), "c": np.zeros((0, 3), "float64")}
    numpy_io.save_file(arrays, tmp_path / "other.safetensors", metadata={"made_by": "somebody"})
    checkpoint = gd.train.load(tmp_path / "other.safetensors")
    assert checkpoint.gdnet_version is None and checkpoint.optimizer_state is None
    assert_same_state(dict(sorted(checkpoint.model_state.items())), arrays)


def _torch_twin():
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors.torch")
    return torch, torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, CLASSES))


def _assert_twins(torch, model, twin):
    """The same weights to the bit, and so the same outputs (up to float32 summation order)."""
    theirs = {name: value.detach().numpy() for name, value in twin.state_dict().items()}
    assert_same_state(weights(model), theirs)
    x = np.random.default_rng(3).normal(size=(5, FEATURES)).astype("float32")
    np.testing.assert_allclose(model(gd.tensor(x)).numpy(), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_gdnet_weights_load_into_the_same_pytorch_model(tmp_path):
    torch, twin = _torch_twin()
    from safetensors.torch import load_file

    model, optimizer, train, _ = setup()
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, verbose=0)
    gd.train.save(tmp_path / "weights.safetensors", model)
    twin.load_state_dict(load_file(tmp_path / "weights.safetensors"))
    gd.train.save(tmp_path / "with-optimizer.safetensors", model, optimizer)
    tensors = load_file(tmp_path / "with-optimizer.safetensors")
    twin.load_state_dict({name: value for name, value in tensors.items() if "/" not in name})
    _assert_twins(torch, model, twin)


def test_pytorch_weights_load_into_the_same_gdnet_model(tmp_path):
    torch, twin = _torch_twin()
    from safetensors.torch import save_file

    torch.manual_seed(0)
    save_file(twin.state_dict(), tmp_path / "torch.safetensors")
    model = mlp()
    checkpoint = gd.train.load_into(tmp_path / "torch.safetensors", model)
    assert checkpoint.epoch is None and checkpoint.extra == {}
    _assert_twins(torch, model, twin)


@pytest.mark.skipif(os.name != "posix", reason="file permissions under a umask are POSIX's")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_files_get_the_usual_permissions_under_the_umask(tmp_path, umask):
    # safetensors writes its own file, readable by its owner only; a checkpoint of a shared run
    # must be readable as any file the user writes (open() under the umask), and other files too
    model = mlp()
    previous = os.umask(umask)
    try:
        gd.save(tmp_path / "model.safetensors", model)
        write_idx(tmp_path / "labels.idx", np.arange(3, dtype=np.uint8))
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for name in ("model.safetensors", "labels.idx", "plain"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name
