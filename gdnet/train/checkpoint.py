"""Checkpoints: a model's weights with everything a resumed run needs, in one safetensors file.

    gd.train.save("run/last.safetensors", model, optimizer, scheduler, loader, epoch=3, lr=0.05)
    checkpoint = gd.train.load_into("run/last.safetensors", model, optimizer, scheduler, loader)
    gd.train.fit(model, loss, optimizer, loader, epochs=10, scheduler=scheduler, initial_epoch=checkpoint.epoch)

The model's parameters and buffers are tensors under their PyTorch names, so
``safetensors.torch.load_file`` reads them into the same PyTorch model, and a PyTorch
safetensors file loads into the gdnet model. Optimizer state arrays are tensors too, under
names with a "/" ("optimizer/state/0/momentum_buffer"), which no parameter name has. The rest
(epoch, step, optimizer hyperparameters, schedule, loader position, random generator states,
your hyperparameters, the gdnet version and the model's architecture: names, shapes, dtypes)
is JSON in the header's "__metadata__", with a SHA-256 of every tensor and of the metadata.

The ``safetensors`` package writes and reads the files (``gdnet.backends.safetensors_io``);
gdnet checks each file's header first, with caps (``_safetensors``), then its checksums and
architecture. Writes are atomic (a temporary file, fsync, rename); loading never unpickles; a
damaged, truncated or foreign file, or one of another architecture, raises CheckpointError
saying what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import reprlib
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable

from .._backend import device_rng, get_backend, host_rng
from .._io import atomic_file, open_regular, reopening_path
from .._version import __version__
from ..autograd import Tensor, dtype_is, dtype_name, namespace_of
from ..backends import host, safetensors_io
from ..data.loader import DataLoader
from ..nn.module import Module
from ..optim.lr_scheduler import LRScheduler
from ..optim.optimizer import Optimizer
from . import _safetensors as st

FORMAT = "gdnet.checkpoint"
FORMAT_VERSION = 1
_CONTAINERS = {"dict": dict, "OrderedDict": OrderedDict, "Counter": Counter}
_CHUNK_CHARACTERS = 1 << 16
_ESCAPE = json.encoder.encode_basestring_ascii  # a string as JSON with ensure_ascii, quotes included


class CheckpointError(ValueError):
    """A file is not a usable checkpoint: damaged, truncated, not safetensors, or of another
    architecture or optimizer than the one it is loaded into."""


@dataclass
class Checkpoint:
    """What ``load`` read. Arrays are host (NumPy) arrays; the states are what each object's
    ``state_dict()`` returned, ready for its ``load_state_dict()``.

    Attributes:
        path: the file.
        model_state: parameter and buffer arrays by name, in the model's order.
        architecture: [(name, shape, dtype name)] of the model's parameters and buffers.
        epoch, step: as given to ``save`` (None when not given).
        optimizer_state, scheduler_state, loader_state: None where not saved.
        rng_state: {"host": ..., "device": {"backend", "device", "state"} or None}.
        extra: the keyword arguments given to ``save``.
        gdnet_version: the version that wrote the file (None for files from other programs).
    """

    path: str
    model_state: "OrderedDict[str, Any]"
    architecture: list[tuple[str, tuple[int, ...], str]]
    epoch: int | None = None
    step: int | None = None
    optimizer_state: dict | None = None
    scheduler_state: dict | None = None
    loader_state: dict | None = None
    rng_state: dict | None = None
    extra: dict = field(default_factory=dict)
    gdnet_version: str | None = None
    backend: str | None = None

    def __repr__(self) -> str:
        """One line per fact; arrays by count, shape and dtype, never by value."""
        sizes = [math.prod(a.shape) for a in self.model_state.values()]
        dtypes = sorted({dtype_name(a.dtype) for a in self.model_state.values()})
        states = {"optimizer": self.optimizer_state, "scheduler": self.scheduler_state, "loader": self.loader_state}
        lines = [
            f"path={self.path!r}",
            f"model_state={len(sizes)} tensors, {sum(sizes):,} values ({', '.join(dtypes) or 'none'})",
            f"epoch={self.epoch}, step={self.step}",
        ]
        for what, state in states.items():
            kind = state.get("type", "saved") if isinstance(state, dict) else state
            lines.append(f"{what}={kind}")
        lines.append(f"extra={_brief(self.extra)}")
        lines.append(f"gdnet_version={self.gdnet_version!r}, backend={self.backend!r}")
        return "Checkpoint(\n  " + ",\n  ".join(lines) + "\n)"


def _brief(value: Any) -> str:
    """``value`` for a repr: arrays as <dtype shape>, long containers and strings cut short."""
    if isinstance(value, Tensor):
        value = value.data
    if _is_array(value):
        return f"<array {dtype_name(value.dtype)} {tuple(value.shape)}>"
    if isinstance(value, dict):
        items = list(value.items())
        shown = ", ".join(f"{k!r}: {_brief(v)}" for k, v in items[:8])
        return "{" + shown + (", ..." if len(items) > 8 else "") + "}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_brief(v) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        return f"[{shown}]" if isinstance(value, list) else f"({shown}{',' if len(value) == 1 else ''})"
    return reprlib.repr(value)


# -- JSON for states that hold tuples, int keys and arrays --------------------------------------
def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (int, float, str))


def _encode(value: Any, path: tuple[str, ...], arrays: dict[str, Any]) -> Any:
    """``value`` as JSON, arrays moved into ``arrays`` under their path joined by "/", and
    tuples and dicts with non-string keys tagged so ``_decode`` gives back the same types."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        value = value.data
    if _is_array(value):
        name = "/".join(path)
        if name in arrays:
            raise CheckpointError(f"two arrays would be stored under the name {name!r}")
        arrays[name] = value
        return {"~tensor": name}
    if isinstance(value, list):
        return [_encode(v, (*path, str(i)), arrays) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"~tuple": [_encode(v, (*path, str(i)), arrays) for i, v in enumerate(value)]}
    if type(value).__name__ in _CONTAINERS and isinstance(value, dict):
        kind = type(value).__name__
        if kind == "dict" and all(isinstance(k, str) and not k.startswith("~") for k in value):
            return {k: _encode(v, (*path, k), arrays) for k, v in value.items()}
        return {"~" + kind: [[_encode(k, (*path, "key"), arrays), _encode(v, (*path, str(k)), arrays)]
                             for k, v in value.items()]}
    raise CheckpointError(f"cannot store the {type(value).__name__} at {'.'.join(path)}: a checkpoint holds "
                          "numbers, strings, lists, tuples, dicts and arrays")


def _decode(value: Any, arrays: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, content), = value.items()
        if tag == "~tensor":
            return arrays[content]
        if tag == "~tuple":
            return tuple(_decode(v, arrays) for v in content)
        if tag[1:] in _CONTAINERS and tag.startswith("~"):
            return _CONTAINERS[tag[1:]](OrderedDict((_decode(k, arrays), _decode(v, arrays)) for k, v in content))
    return {k: _decode(v, arrays) for k, v in value.items()}


# -- the model's architecture -------------------------------------------------------------------
_DTYPE_NAMES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16",
                "uint8", "bool")


def _dtype_name(array: Any) -> str:
    xp = namespace_of(array)
    for name in _DTYPE_NAMES:
        if getattr(xp, name, None) is not None and array.dtype == getattr(xp, name):
            return name
    raise CheckpointError(f"arrays of dtype {array.dtype} cannot be stored in a checkpoint")


def architecture(model) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype name) of each parameter and buffer, in the model's order."""
    return [(name, tuple(array.shape), _dtype_name(array)) for name, array in model.state_dict().items()]


def _differences(saved: list, model) -> list[str]:
    theirs = {name: (tuple(shape), dtype) for name, shape, dtype in saved}
    mine = {name: (shape, dtype) for name, shape, dtype in architecture(model)}
    found = []
    missing = [name for name in mine if name not in theirs]
    if missing:
        found.append(f"missing from the checkpoint: {missing}")
    unexpected = [name for name in theirs if name not in mine]
    if unexpected:
        found.append(f"not in the model: {unexpected}")
    for name in (n for n in mine if n in theirs):
        (shape, dtype), (model_shape, model_dtype) = theirs[name], mine[name]
        if shape != model_shape:
            found.append(f"{name!r} has shape {shape} in the checkpoint and {model_shape} in the model")
        elif dtype != model_dtype:
            found.append(f"{name!r} is {dtype} in the checkpoint and {model_dtype} in the model")
    return found


def all_finite(arrays: Iterable[Any]) -> bool:
    """Whether every floating value of ``arrays`` is finite: one device read for all of them."""
    flags = None
    for array in arrays:
        array = array.data if isinstance(array, Tensor) else array
        xp = namespace_of(array)
        if not dtype_is(xp, array.dtype, "real floating"):
            continue
        finite = xp.all(xp.isfinite(array))
        flags = finite if flags is None else xp.logical_and(flags, finite)
    return True if flags is None else bool(flags)


# -- random generators --------------------------------------------------------------------------
def _rng_state() -> dict:
    backend = get_backend()
    generator = device_rng(backend)
    device = None
    if hasattr(generator, "get_state"):
        device = {"backend": backend.name, "device": str(backend.device), "state": generator.get_state()}
    return {"host": host_rng().get_state(), "device": device}


class _Generators:
    """gdnet's random generators behind the state_dict surface the other states have."""

    def state_dict(self) -> dict:
        return _rng_state()

    def load_state_dict(self, state: dict) -> None:
        _restore_rng(state)


def _restore_rng(state: dict) -> None:
    host_rng().set_state(state["host"])
    device = state.get("device")
    backend = get_backend()
    generator = device_rng(backend)
    if device is not None and device["backend"] == backend.name and hasattr(generator, "set_state"):
        generator.set_state(device["state"])


# -- saving ------------------------------------------------------------------------------------
def _digest(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


def _metadata_digest(metadata: dict[str, str]) -> str:
    """SHA-256 of the metadata as sorted, compact, ASCII JSON (the bytes of ``json.dumps(metadata,
    sort_keys=True, separators=(",", ":"))``), each string escaped and hashed in pieces: the
    metadata holds the whole state, and one more copy of it would double what loading costs."""
    digest = hashlib.sha256()
    for position, key in enumerate(sorted(metadata)):
        digest.update(b"," if position else b"{")
        for text, colon in ((key, b":"), (metadata[key], b"")):
            digest.update(b'"')
            # JSON escapes character by character, so pieces escaped apart join into the whole
            for start in range(0, len(text), _CHUNK_CHARACTERS):
                digest.update(_ESCAPE(text[start:start + _CHUNK_CHARACTERS])[1:-1].encode("ascii"))
            digest.update(b'"' + colon)
    digest.update(b"}" if metadata else b"{}")
    return digest.hexdigest()


def save(path: str | os.PathLike, model, optimizer=None, scheduler=None, loader=None, *, epoch: int | None = None,
         step: int | None = None, **extra: Any) -> None:
    """Write ``model``'s parameters and buffers, and the state of ``optimizer``, ``scheduler``,
    ``loader`` and gdnet's random generators, to a safetensors file at ``path``, atomically.

    Args:
        path: the file to write (its directory must exist); replaced only once complete.
        model: the Module whose weights to store (under their PyTorch names).
        optimizer, scheduler, loader: optional; their ``state_dict()`` is stored.
        epoch, step: where training stands (``load`` gives them back).
        extra: hyperparameters or anything else JSON can hold (numbers, strings, lists,
            dicts; arrays are stored as tensors), given back as ``Checkpoint.extra``.
    Raises:
        TypeError: an argument in the wrong place (a Module given as the optimizer, say).
    """
    _check_parts(model, optimizer=optimizer, scheduler=scheduler, loader=loader)

    arrays: dict[str, Any] = OrderedDict(model.state_dict())
    layout = architecture(model)
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gdnet_version": __version__,
        "backend": get_backend().describe(),
        "architecture": [[name, list(shape), dtype] for name, shape, dtype in layout],
        "epoch": epoch,
        "step": step,
        "optimizer": None if optimizer is None else _encode(optimizer.state_dict(), ("optimizer",), arrays),
        "scheduler": None if scheduler is None else _encode(scheduler.state_dict(), ("scheduler",), arrays),
        "loader": None if loader is None else _encode(loader.state_dict(), ("loader",), arrays),
        "rng": _encode(_rng_state(), ("rng",), arrays),
        "extra": _encode(extra, ("extra",), arrays),
    }
    stored, listing = {}, {}
    for name, array in arrays.items():
        values = host.to_numpy(array)
        code = st.CODES.get(host.dtype_name(values))
        if code is None:
            raise CheckpointError(f"{name!r} has dtype {host.dtype_name(values)}, which safetensors cannot hold")
        stored[name] = safetensors_io.stored(values)
        listing[name] = [code, list(values.shape), _digest(stored[name])]
    state["tensors"] = listing
    metadata = {"format": "pt", "gdnet": json.dumps(state, separators=(",", ":"))}
    metadata["gdnet_sha256"] = _metadata_digest(metadata)
    with atomic_file(path) as temporary:
        safetensors_io.write_file(temporary, stored, metadata)


_PARTS = {"optimizer": Optimizer, "scheduler": LRScheduler, "loader": DataLoader}


def _check_parts(model: Any, **parts: Any) -> None:
    """Each object in its own place: a Module first, then an optimizer, a scheduler, a loader."""
    order = "save(path, model, optimizer=None, scheduler=None, loader=None)"
    if not isinstance(model, Module):
        raise TypeError(f"{order}: the model is a {type(model).__name__}; expected a gdnet Module")
    for what, value in parts.items():
        if value is None:
            continue
        misplaced = isinstance(value, Module) or any(isinstance(value, kind) for other, kind in _PARTS.items()
                                                    if other != what)
        if misplaced or not callable(getattr(value, "state_dict", None)):
            raise TypeError(f"{order}: the {what} is a {type(value).__name__}; expected a gdnet "
                            f"{_PARTS[what].__name__} (something with state_dict()) or None")


def _warn_non_finite(checkpoint: Checkpoint) -> None:
    """Warn when weights hold NaN or inf: a run that diverged saved them. They still load (as in
    PyTorch, and so that the run can be inspected), but training or evaluating from them gives NaN."""
    bad = {name: host.count_nonfinite(array) for name, array in checkpoint.model_state.items()}
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        listed = ", ".join(f"{name!r} ({count:,} of {math.prod(checkpoint.model_state[name].shape):,})"
                           for name, count in list(bad.items())[:5])
        warnings.warn(f"{checkpoint.path}: the weights hold NaN or inf values: {listed}"
                      f"{' ...' if len(bad) > 5 else ''}; the run that saved them had diverged, and a model "
                      "loaded from them computes NaN", RuntimeWarning, stacklevel=3)


# -- loading ------------------------------------------------------------------------------------
def load(path: str | os.PathLike | BinaryIO) -> Checkpoint:
    """Read and verify a checkpoint (or any safetensors file of weights) without changing anything.

    The header is read first and checked against the file's size, with caps; only then does
    the ``safetensors`` package read the tensors (memory-mapped from a path), so a damaged or
    crafted file costs no more memory than the tensors it holds (twice that for a file
    object, read whole before the package parses it).

    Args:
        path: the file (a regular file, or a symbolic link to one), or a binary file object
            open for reading (read up to the end its header announces, plus one byte).
    Raises:
        CheckpointError: not safetensors (a pickle or zip file, say), truncated, or damaged:
            the header, a tensor's bytes or the metadata do not match what was written; a
            header above the caps of ``_safetensors`` (size, tensors, values, nesting); a path
            that is not a regular file (a directory, a device such as /dev/zero, a FIFO); a
            file the safetensors package refuses (the message gives its reason), or one that
            another took the place of while it was read (where the platform cannot read the
            checked file through its descriptor).
        FileNotFoundError: no file at ``path``.
        TypeError: a file object open in text mode.
    Warns:
        RuntimeWarning: the weights hold NaN or inf (they load all the same).
    """
    checkpoint = _read(path)
    _warn_non_finite(checkpoint)
    return checkpoint


def _read(path: str | os.PathLike | BinaryIO) -> Checkpoint:
    if isinstance(path, io.TextIOBase):
        raise TypeError(f"load: {getattr(path, 'name', 'the file')!r} is open in text mode; a checkpoint is "
                        "binary: open it with open(path, 'rb'), or pass the path itself")
    streamed = hasattr(path, "read")
    source = str(getattr(path, "name", "<file object>")) if streamed else os.fspath(path)
    try:
        if streamed:
            header, state, arrays = _read_stream(path, source)
        else:
            with open_regular(source, CheckpointError) as (file, size):
                header = st.read_header(file, size, source)
                state = _state(source, header.metadata)
                arrays, metadata = safetensors_io.read_file(reopening_path(file, source))
            if metadata != header.metadata:
                raise CheckpointError(f"{source} changed while it was read: its metadata is not the one checked")
    except st.SafetensorsError as exc:
        raise CheckpointError(str(exc)) from exc
    except safetensors_io.SafetensorsPackageError as exc:
        raise CheckpointError(f"{source} is damaged: the safetensors package refuses it ({exc})") from exc
    _same_tensors(source, header.entries, arrays)
    if state is None:
        return _foreign(source, header.entries, arrays)
    try:
        return _interpret(source, state, header.entries, arrays)
    except CheckpointError:
        raise
    except RecursionError as exc:
        raise CheckpointError(f"{source}: the gdnet metadata is nested too deeply to read (a crafted "
                              "file?)") from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        # the SHA-256 matched, so whoever wrote this metadata meant it: not a gdnet checkpoint's
        raise CheckpointError(f"{source}: the metadata is not a gdnet checkpoint's ({type(exc).__name__}: "
                              f"{exc})") from exc


def _read_stream(stream: BinaryIO, source: str) -> tuple[st.Header, dict | None, dict[str, Any]]:
    """(header, gdnet state, arrays) of a file object, read up to the end its checked header
    announces (plus one byte) and handed whole to the package, which takes bytes only."""
    header = st.read_header(stream, None, source, keep=True)
    state = _state(source, header.metadata)
    data = st.read_data(stream, header, source)
    whole = st.file_bytes(header, data)
    data.clear()  # one copy of the tensors' bytes at a time
    return header, state, safetensors_io.read_bytes(whole)


def _state(source: str, metadata: dict[str, str]) -> dict | None:
    """The gdnet state in a file's metadata, its SHA-256 checked; None for a file another
    program wrote (no gdnet metadata). Read before the tensors, so bad metadata costs nothing."""
    if "gdnet" not in metadata and "gdnet_sha256" not in metadata:
        return None
    saved_digest = metadata.get("gdnet_sha256")
    rest = {k: v for k, v in metadata.items() if k != "gdnet_sha256"}
    if saved_digest != _metadata_digest(rest) or "gdnet" not in rest:
        raise CheckpointError(f"{source} is damaged: its metadata does not match its SHA-256")
    try:
        state = json.loads(rest["gdnet"])
    except RecursionError as exc:
        raise CheckpointError(f"{source}: the gdnet metadata is nested too deeply to read (a crafted "
                              "file?)") from exc
    except ValueError as exc:
        raise CheckpointError(f"{source}: the metadata is not a gdnet checkpoint's ({type(exc).__name__}: "
                              f"{exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("format_version"),
                                                                                        int):
        raise CheckpointError(f"{source}: the metadata is not a gdnet checkpoint's")
    if state["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{source} has checkpoint format {state['format_version']}, newer than this gdnet "
                              f"({FORMAT_VERSION}); upgrade gdnet to read it")
    return state


def _same_tensors(source: str, entries: dict[str, st.Entry], arrays: dict[str, Any]) -> None:
    """The package read the tensors gdnet's check of the header found (names, dtypes, shapes)."""
    if set(entries) != set(arrays):
        raise CheckpointError(f"{source} changed while it was read: tensors {sorted(set(entries) ^ set(arrays))} "
                              "are not those of the header checked")
    for name, entry in entries.items():
        array = arrays[name]
        if host.dtype_name(array) != st.DTYPES[entry.dtype][0] or tuple(array.shape) != entry.shape:
            raise CheckpointError(f"{source} changed while it was read: tensor {name!r} is {host.dtype_name(array)} "
                                  f"{tuple(array.shape)}; the header checked said {entry.dtype} {entry.shape}")


def _interpret(source: str, state: dict, entries: dict[str, st.Entry], arrays: dict[str, Any]) -> Checkpoint:
    _verify(source, entries, arrays, state["tensors"])
    layout = [(name, tuple(shape), dtype) for name, shape, dtype in state["architecture"]]
    return Checkpoint(
        path=source,
        model_state=OrderedDict((name, arrays[name]) for name, _, _ in layout),
        architecture=layout,
        epoch=state["epoch"],
        step=state["step"],
        optimizer_state=_decode(state["optimizer"], arrays),
        scheduler_state=_decode(state["scheduler"], arrays),
        loader_state=_decode(state["loader"], arrays),
        rng_state=_decode(state["rng"], arrays),
        extra=_decode(state["extra"], arrays),
        gdnet_version=state["gdnet_version"],
        backend=state["backend"],
    )


def _verify(source: str, entries: dict[str, st.Entry], arrays: dict[str, Any], listing: dict[str, list]) -> None:
    """Every tensor is the one the metadata lists: same names, dtypes, shapes and SHA-256 (of
    the bytes as stored: C order, little-endian)."""
    if set(entries) != set(listing):
        raise CheckpointError(f"{source} is damaged: the header's tensors {sorted(set(entries) ^ set(listing))} "
                              "do not match the metadata's list")
    for name, entry in entries.items():
        code, shape, digest = listing[name]
        if entry.dtype != code or list(entry.shape) != shape:
            raise CheckpointError(f"{source} is damaged: tensor {name!r} is {entry.dtype} {entry.shape} in the "
                                  f"header and {code} {tuple(shape)} in the metadata")
        if _digest(safetensors_io.stored(arrays[name])) != digest:
            raise CheckpointError(f"{source} is damaged: the bytes of tensor {name!r} do not match their SHA-256")


def _foreign(source: str, entries: dict[str, st.Entry], arrays: dict[str, Any]) -> Checkpoint:
    """A safetensors file another program wrote (PyTorch's weights, say): tensors only, in the
    order they lie in the file."""
    ordered = sorted(entries.items(), key=lambda item: item[1].start)
    return Checkpoint(
        path=source,
        model_state=OrderedDict((name, arrays[name]) for name, _ in ordered),
        architecture=[(name, e.shape, st.DTYPES[e.dtype][0]) for name, e in ordered],
    )


def load_into(path: str | os.PathLike | BinaryIO, model, optimizer=None, scheduler=None, loader=None,
              restore_rng: bool = True) -> Checkpoint:
    """Put a checkpoint back: the model's weights, and the state of whichever of ``optimizer``,
    ``scheduler`` and ``loader`` are given, and (``restore_rng``) gdnet's random generators.
    Resuming ``fit`` from there (``initial_epoch=checkpoint.epoch``) continues the run exactly.

    Everything is checked before anything changes: the architecture (names, shapes, dtypes of
    the parameters and buffers) and the presence and type of each state. Then the states go
    in one by one (each object's ``load_state_dict`` is the full check of its own state); if
    one does not fit, those already put in are restored, so a failed ``load_into`` leaves the
    model, optimizer, scheduler, loader and random generators as they were.

    Returns:
        the Checkpoint, for its epoch, step and extra.
    Raises:
        CheckpointError: as ``load``, or the file holds another architecture (naming each
            parameter that differs), lacks a state asked for, or holds another kind of one,
            or one that does not fit its object (another dataset's loader, say).
    """
    checkpoint = load(path)
    differences = _differences(checkpoint.architecture, model)
    if differences:
        raise CheckpointError(f"{checkpoint.path} holds another architecture than this {type(model).__name__}: "
                              + "; ".join(differences))
    parts = [("optimizer", optimizer, checkpoint.optimizer_state), ("scheduler", scheduler, checkpoint.scheduler_state),
             ("loader", loader, checkpoint.loader_state)]
    for what, target, state in parts:
        if target is None:
            continue
        if state is None:
            raise CheckpointError(f"{checkpoint.path} holds no {what} state (it was saved without one)")
        kind = state.get("type") if isinstance(state, dict) else None
        if kind is not None and kind != type(target).__name__:
            raise CheckpointError(f"{checkpoint.path} holds the state of the {what} {kind}; this {what} is "
                                  f"{type(target).__name__}")
    parts = [(what, target, state) for what, target, state in parts if target is not None]
    parts.append(("model", model, checkpoint.model_state))
    if restore_rng and checkpoint.rng_state is not None:
        parts.append(("random generator", _Generators(), checkpoint.rng_state))
    applied: list[tuple[Any, Any]] = []
    try:
        for what, target, state in parts:
            # the model's and the optimizer's states hold their live arrays, which loading
            # replaces rather than overwrites, so they stay as they are for a restore
            previous = target.state_dict()
            try:
                target.load_state_dict(state)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                raise CheckpointError(f"{checkpoint.path}: the {what} state does not fit this {what}: {exc}") from exc
            applied.append((target, previous))
    except BaseException:
        for target, previous in reversed(applied):
            target.load_state_dict(previous)
        raise
    return checkpoint
