"""Datasets held as host arrays, and the MNIST-family image sets read from IDX files.

``fashion_mnist()`` and ``mnist()`` look for the four IDX files (raw or .gz) in an explicit
``root`` (that folder or root/<name>) and only there when one is given; otherwise, in order,
in ``$GDNET_DATA`` (that folder or $GDNET_DATA/<name>), the user cache (``$XDG_CACHE_HOME`` or
~/.cache, then gdnet/<name>) and /usr/share/datasets/<name>, where the Debian package
dataset-fashion-mnist installs Fashion-MNIST. ``download=True`` fetches missing files (into
root/<name>, or the user cache without a root) and checks their MD5 checksums.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Sequence

from .._io import atomic_write
from ..autograd import Tensor
from ..backends import host
from .idx import read_idx

# ------------------------------------------------------------------------------------------
# ArrayDataset


def _as_host_array(value: Any, what: str) -> Any:
    """``value`` as a host array: device arrays (and Tensors) are copied to the host once."""
    if host.is_host_array(value):
        return value
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "__array_namespace__"):
        return host.to_numpy(value)
    try:
        return host.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must be an array (NumPy array, nested sequences of numbers, or an array "
            f"of a gdnet backend); got {type(value).__name__} ({exc})"
        ) from exc


class ArrayDataset:
    """Examples held as host arrays: ``dataset[i]`` is ``(inputs[i], targets[i])``.

    Args:
        inputs: host array of shape (N, ...), any real dtype (uint8 images, float features);
            NaN and infinity are refused.
        targets: None, or a host array of shape (N, ...): integer class labels (non-negative)
            or float regression targets (finite).
        num_classes: declares a classification set: targets must then be integer labels in
            [0, num_classes). Default: max label + 1 for integer targets, None otherwise.
        classes: names of the classes, index = label (sets num_classes to len(classes)).
    Attributes:
        inputs, targets: the host arrays.
        num_classes: int for integer targets, else None.
        classes: list of class names, or None.
    Raises:
        ValueError: lengths differ, NaN or inf present, negative or out-of-range labels, float labels
            where num_classes or classes declares classification, 0-d inputs.
        TypeError: inputs or targets of a non-numeric dtype (bool, complex, object, strings).
    """

    def __init__(
        self,
        inputs: Any,
        targets: Any = None,
        *,
        num_classes: int | None = None,
        classes: Sequence[str] | None = None,
    ):
        inputs = _as_host_array(inputs, "inputs")
        if len(inputs.shape) == 0:
            raise ValueError(
                "inputs is a 0-d array; expected shape (N, ...) with one row per example"
            )
        _check_real(inputs, "inputs")
        _check_finite(inputs, "inputs")
        if classes is not None:
            classes = [str(name) for name in classes]
            if num_classes is not None and num_classes != len(classes):
                raise ValueError(
                    f"num_classes={num_classes} but {len(classes)} class names were given; "
                    "expected them to agree (or give only one)"
                )
            num_classes = len(classes)
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
        ):
            raise ValueError(f"num_classes must be a positive int; got {num_classes!r}")
        if targets is not None:
            targets = _as_host_array(targets, "targets")
            if len(targets.shape) == 0 or targets.shape[0] != inputs.shape[0]:
                got = "a 0-d array" if len(targets.shape) == 0 else f"{targets.shape[0]}"
                raise ValueError(
                    f"inputs and targets differ in length: inputs has {inputs.shape[0]} examples "
                    f"(shape {tuple(inputs.shape)}), targets has {got} "
                    f"(shape {tuple(targets.shape)}); expected the same first dimension"
                )
            _check_real(targets, "targets")
            num_classes = _check_targets(targets, num_classes)
        elif num_classes is not None:
            raise ValueError(
                f"num_classes={num_classes} (or classes) given without targets; expected "
                "integer label targets for a classification set"
            )
        self.inputs = inputs
        self.targets = targets
        self.num_classes = num_classes
        self.classes = classes

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __getitem__(self, index: Any) -> tuple[Any, Any]:
        """``(inputs[index], targets[index])`` as host arrays (targets: None without targets)."""
        target = None if self.targets is None else self.targets[index]
        return self.inputs[index], target

    def __repr__(self) -> str:
        target = "no targets" if self.targets is None else (
            f"targets {tuple(self.targets.shape)} {host.dtype_name(self.targets)}"
        )
        classes = "" if self.num_classes is None else f", {self.num_classes} classes"
        return (
            f"ArrayDataset({len(self)} examples, inputs {tuple(self.inputs.shape)} "
            f"{host.dtype_name(self.inputs)}, {target}{classes})"
        )


def _check_real(array: Any, what: str) -> None:
    kind = host.dtype_kind(array)
    if kind not in "uif":
        raise TypeError(
            f"{what} has dtype {host.dtype_name(array)}; expected an integer or floating dtype "
            "(uint8, int64, float32, ...)"
        )


def _check_finite(array: Any, what: str) -> None:
    first = host.first_nonfinite(array)
    if first is not None:
        index, value = first
        raise ValueError(
            f"{what} contains {host.count_nonfinite(array)} non-finite value(s) (NaN or inf), the first at index "
            f"{index}: {value}; expected finite numbers (drop, fill or clip those values first)"
        )


def _check_targets(targets: Any, num_classes: int | None) -> int | None:
    """Validate targets; return the number of classes (None for float targets)."""
    kind = host.dtype_kind(targets)
    if kind == "f":
        if num_classes is not None:
            raise ValueError(
                f"class labels have dtype {host.dtype_name(targets)}; expected integer labels "
                f"in [0, {num_classes}) (convert with .astype('int64') if the values are whole)"
            )
        _check_finite(targets, "targets")
        return None
    if targets.shape[0] == 0:
        return num_classes
    lowest, highest = host.value_range(targets)
    if lowest < 0:
        raise ValueError(
            f"class labels must be non-negative; the smallest label is {lowest}; expected "
            "labels 0, 1, ..., num_classes - 1"
        )
    if num_classes is None:
        return highest + 1
    if highest >= num_classes:
        raise ValueError(
            f"the largest class label is {highest}; expected labels in [0, {num_classes}) "
            f"for num_classes={num_classes}"
        )
    return num_classes


# ------------------------------------------------------------------------------------------
# Finding and downloading the MNIST-family files


class DatasetNotFoundError(FileNotFoundError):
    """None of the places searched holds a dataset's files."""


class DatasetDownloadError(RuntimeError):
    """A download failed: the server could not be reached, or a file's checksum is wrong."""


TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IMAGE_SIZE = (28, 28)


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """Where a dataset downloads from.

    Attributes:
        mirrors: base URLs tried in order; each file is ``base + name + ".gz"``.
        md5: file name (with .gz) -> MD5 hex digest of the compressed file.
        classes: class names, index = label.
        install_hint: how to get the files without a download, for error messages.
    """

    mirrors: tuple[str, ...]
    md5: dict[str, str]
    classes: tuple[str, ...]
    install_hint: str = ""


# The published files and their MD5 checksums (the ones torchvision checks). Tests replace
# entries to download from a local server.
SOURCES: dict[str, DatasetSource] = {
    "fashion-mnist": DatasetSource(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        classes=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        install_hint="install the Debian package: `apt-get install dataset-fashion-mnist`",
    ),
    "mnist": DatasetSource(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        classes=tuple(str(digit) for digit in range(10)),
    ),
}

# Debian's dataset packages install under /usr/share/datasets/<name>; tests point it elsewhere.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DOWNLOAD_TIMEOUT_S = 60
_DOWNLOAD_FLAG = "--download on the gdnet command line"
_CHUNK_BYTES = 1 << 20


def cache_dir(name: str) -> Path:
    """The user cache folder for dataset ``name``: $XDG_CACHE_HOME (or ~/.cache)/gdnet/<name>."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdnet" / name


def download_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where ``download=True`` puts dataset ``name``: root/<name>, or the user cache."""
    return cache_dir(name) if root is None else Path(root) / name


def candidate_dirs(name: str, root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders searched for dataset ``name``, in order, each with where it comes from.

    An explicit ``root`` is the only place searched: a mistyped path is an error, never a
    silent fall back to other data."""
    if root is not None:
        return [("root", Path(root)), ("root", Path(root) / name)]
    places: list[tuple[str, Path]] = []
    from_env = os.environ.get("GDNET_DATA")
    if from_env:
        places += [("$GDNET_DATA", Path(from_env)), ("$GDNET_DATA", Path(from_env) / name)]
    places.append(("user cache", cache_dir(name)))
    places.append(("system", SYSTEM_DATA_DIR / name))
    return places


def _find_file(folder: Path, stem: str) -> Path | None:
    # raw first: no decompression needed
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _files_in(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """(found file per name, names missing) in ``folder``."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for stem in FILE_NAMES:
        path = _find_file(folder, stem)
        if path is None:
            missing.append(stem)
        else:
            found[stem] = path
    return found, missing


def locate(name: str, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The four files of dataset ``name`` from the first folder holding all of them.

    Raises:
        DatasetNotFoundError: no folder has all four; the message lists each place and what it
            lacks, and how to get the files.
    """
    report: list[str] = []
    for origin, folder in candidate_dirs(name, root):
        if not folder.is_dir():
            report.append(f"  {folder} ({origin}): no such folder")
            continue
        found, missing = _files_in(folder)
        if not missing:
            return found
        lacking = ", ".join(f"{stem}[.gz]" for stem in missing)
        report.append(f"  {folder} ({origin}): missing {lacking}")
    source = SOURCES[name]
    needed = ", ".join(f"{stem}[.gz]" for stem in FILE_NAMES)
    if root is not None:
        ways = [
            f"put {needed} into {Path(root)}",
            f"pass download=True ({_DOWNLOAD_FLAG}) to fetch them into {download_dir(name, root)}",
            "leave root unset to search $GDNET_DATA, the user cache and "
            f"{SYSTEM_DATA_DIR / name}",
        ]
    else:
        ways = [
            f"set GDNET_DATA (or pass root=) to a folder holding {needed}",
            f"pass download=True ({_DOWNLOAD_FLAG}) to fetch them into {download_dir(name, root)}",
        ]
    if source.install_hint:
        ways.insert(0, source.install_hint)
    raise DatasetNotFoundError(
        f"dataset {name!r} not found; looked in:\n" + "\n".join(report)
        + "\nto get it: " + "; or ".join(ways)
    )


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(total: int | None, label: str):
    from tqdm.auto import tqdm

    # progress only for a person watching; logs and tests stay clean
    return tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
        disable=not sys.stderr.isatty(), leave=False,
    )


def _fetch(url: str, destination: Path, expected_md5: str) -> None:
    """Download ``url`` to ``destination`` atomically (``gdnet._io.atomic_write``), checking its
    MD5; leave nothing behind on failure."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(destination, _checked_download(url, destination.name, expected_md5))


def _checked_download(url: str, label: str, expected_md5: str) -> Iterator[bytes]:
    """The bytes of ``url`` in chunks; DatasetDownloadError after the last one if their MD5 is
    not ``expected_md5`` (so the writer drops them)."""
    digest = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        with _progress_bar(int(length) if length else None, label) as bar:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                bar.update(len(chunk))
                yield chunk
    got = digest.hexdigest()
    if got != expected_md5:
        raise DatasetDownloadError(
            f"checksum mismatch for {url}: MD5 {got}, expected {expected_md5}; the file was "
            "not saved (a changed mirror or a damaged transfer)"
        )


def download_dataset(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Fetch the four files of dataset ``name`` into ``folder`` (default: its user cache
    folder); files already there with the right checksum are kept. Returns the folder.

    Raises:
        DatasetDownloadError: every mirror failed for some file (unreachable, HTTP error, or a
            checksum mismatch); the message lists each attempt.
    """
    source = SOURCES[name]
    folder = cache_dir(name) if folder is None else Path(folder)
    mirrors = list(source.mirrors)
    for stem in FILE_NAMES:
        file_name = f"{stem}.gz"
        expected = source.md5[file_name]
        destination = folder / file_name
        if destination.is_file() and _md5_of(destination) == expected:
            continue
        failures: list[str] = []
        for base in list(mirrors):
            url = base + file_name
            try:
                _fetch(url, destination, expected)
                # the remaining files try the mirror that worked first
                mirrors.remove(base)
                mirrors.insert(0, base)
                break
            except DatasetDownloadError as exc:
                failures.append(f"  {exc}")
            except (OSError, http.client.HTTPException) as exc:
                # OSError: URLError, HTTPError, timeouts; HTTPException: a cut-off response
                failures.append(f"  {url}: {exc}")
        else:
            hint = f"; or {source.install_hint}" if source.install_hint else ""
            raise DatasetDownloadError(
                f"could not download {file_name} of {name!r}:\n" + "\n".join(failures)
                + f"\ncopy the files into {folder} by hand, or set GDNET_DATA to a folder "
                f"holding them{hint}"
            )
    return folder


# ------------------------------------------------------------------------------------------
# The MNIST family


def _read_images(path: Path) -> Any:
    images = read_idx(path)
    if host.dtype_name(images) != "uint8" or tuple(images.shape[1:]) != IMAGE_SIZE:
        raise ValueError(
            f"{path}: images of shape {tuple(images.shape)} {host.dtype_name(images)}; expected "
            f"shape (N, {IMAGE_SIZE[0]}, {IMAGE_SIZE[1]}) uint8"
        )
    return images


def _read_labels(path: Path, count: int) -> Any:
    labels = read_idx(path)
    if host.dtype_name(labels) != "uint8" or len(labels.shape) != 1:
        raise ValueError(
            f"{path}: labels of shape {tuple(labels.shape)} {host.dtype_name(labels)}; expected "
            "shape (N,) uint8"
        )
    if labels.shape[0] != count:
        raise ValueError(
            f"{path}: {labels.shape[0]} labels for {count} images; expected one label per image"
        )
    return host.astype(labels, "int64")


def find(name: str, root: str | os.PathLike | None = None, download: bool = False) -> dict[str, Path]:
    """The four files of dataset ``name`` (see ``locate``), downloaded first where none of the
    places searched has them and ``download`` is True."""
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(SOURCES)}")
    try:
        return locate(name, root)
    except DatasetNotFoundError:
        if not download:
            raise
        download_dataset(name, download_dir(name, root))
        return locate(name, root)


def load_mnist_family(
    name: str, root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test) of an MNIST-format dataset registered in ``SOURCES`` under ``name``.

    Images are uint8 of shape (N, 28, 28); labels int64 of shape (N,) in [0, 10).
    """
    files = find(name, root, download)
    classes = list(SOURCES[name].classes)
    splits = []
    for images_name, labels_name in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        images = _read_images(files[images_name])
        labels = _read_labels(files[labels_name], images.shape[0])
        splits.append(ArrayDataset(images, labels, classes=classes))
    return splits[0], splits[1]


def fashion_mnist(
    root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ArrayDataset, ArrayDataset]:
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 grey images of 10 kinds of clothing.

    Args:
        root: a folder holding the four IDX files (raw or .gz), directly or in
            root/fashion-mnist; the only place searched when given. Default: search
            $GDNET_DATA, the user cache and /usr/share/datasets/fashion-mnist (the Debian
            package dataset-fashion-mnist).
        download: fetch the files when no folder searched has them (into root/fashion-mnist,
            or the user cache without a root).
    Returns:
        (train, test) ArrayDatasets: inputs uint8 (N, 28, 28), targets int64 (N,) in [0, 10),
        ``classes`` the ten names ("T-shirt/top", "Trouser", ...).
    Raises:
        DatasetNotFoundError: no folder has the files (and download is False).
        DatasetDownloadError: download=True and the download failed.
        IDXFormatError: a file is damaged.
    """
    return load_mnist_family("fashion-mnist", root, download)


def mnist(
    root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ArrayDataset, ArrayDataset]:
    """MNIST: 60,000 training and 10,000 test 28x28 grey images of handwritten digits.

    Args:
        root: a folder holding the four IDX files (raw or .gz), directly or in root/mnist;
            the only place searched when given. Default: search $GDNET_DATA, the user cache
            and /usr/share/datasets/mnist.
        download: fetch the files when no folder searched has them (into root/mnist, or
            the user cache without a root).
    Returns:
        (train, test) ArrayDatasets: inputs uint8 (N, 28, 28), targets int64 (N,) in [0, 10),
        ``classes`` "0" to "9".
    Raises:
        DatasetNotFoundError: no folder has the files (and download is False).
        DatasetDownloadError: download=True and the download failed.
        IDXFormatError: a file is damaged.
    """
    return load_mnist_family("mnist", root, download)
