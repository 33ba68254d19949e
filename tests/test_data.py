"""gdnet.data: IDX files, datasets and their search/download, and the device-aware DataLoader."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import stat
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import dead_process_id, make_stale, peak_memory

import gdnet as gd
from gdnet import cli
from gdnet.data import (
    ArrayDataset,
    DataLoader,
    DatasetDownloadError,
    DatasetNotFoundError,
    IDXFormatError,
    datasets,
    fashion_mnist,
    mnist,
    read_idx,
    write_idx,
)

FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# --------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize(
    "dtype, shape",
    [
        ("uint8", (5, 28, 28)),
        ("int8", (7,)),
        ("int16", (3, 4)),
        ("int32", (2, 3, 4)),
        ("float32", (6, 2)),
        ("float64", (2, 2, 2, 2)),
        ("uint8", (0, 28, 28)),
    ],
)
def test_idx_round_trip(tmp_path, dtype, shape, compress):
    rng = np.random.default_rng(1)
    if dtype.startswith("float"):
        array = rng.normal(size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    path = tmp_path / "array.idx"
    write_idx(path, array, gzip=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result is the caller's to modify


def test_idx_big_endian_on_disk(tmp_path):
    path = tmp_path / "int32.idx"
    write_idx(path, np.array([1, -2], dtype=np.int32))
    header = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2])
    assert path.read_bytes() == header + b"\x00\x00\x00\x01\xff\xff\xff\xfe"


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    compressed_without_suffix = tmp_path / "images-idx2-ubyte"
    raw_with_gz_suffix = tmp_path / "labels-idx2-ubyte.gz"
    write_idx(compressed_without_suffix, array, gzip=True)
    write_idx(raw_with_gz_suffix, array, gzip=False)
    np.testing.assert_array_equal(read_idx(compressed_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), array)


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


GOOD = _idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x01\x00" + GOOD[2:], ["bad magic number", "01 00", "expected 00 00"]),
        (GOOD[:2] + b"\x0a" + GOOD[3:], ["unknown element type code 0x0A", "0x08 uint8"]),
        (b"\x00\x00\x08\x00", ["0 dimensions", "expected 1 to 255"]),
        (b"\x00\x00", ["too short", "expected at least 4 bytes"]),
        (GOOD[:9], ["truncated header", "12 header bytes", "has 9 bytes"]),
        (GOOD[:-1], ["truncated", "18 bytes", "has 17 bytes"]),
        (GOOD + b"\x00", ["trailing bytes", "18 bytes", "has 19 bytes"]),
        (gzip.compress(GOOD)[:-6], ["gzip stream is truncated or corrupt"]),
        (b"\x1f\x8b" + b"\x00" * 30, ["gzip stream is truncated or corrupt"]),
        (gzip.compress(GOOD[:-1]), ["after gzip decompression", "truncated"]),
    ],
    ids=[
        "bad-magic", "unknown-dtype", "no-dimensions", "short-header", "truncated-header",
        "truncated-data", "trailing-bytes", "truncated-gzip", "corrupt-gzip", "gzip-short-data",
    ],
)
def test_idx_corruption_is_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message
    assert isinstance(info.value, ValueError)


def test_idx_corrupt_checks_accept_the_good_bytes(tmp_path):
    path = tmp_path / "good-idx"
    path.write_bytes(GOOD)
    np.testing.assert_array_equal(read_idx(path), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.zeros(3, dtype=np.int64), "dtype int64 has no IDX type code"),
        (np.zeros(3, dtype=bool), "dtype bool has no IDX type code"),
        (np.array(5, dtype=np.uint8), "has 0 dimensions; expected 1 to 255"),
        (np.zeros((2**32, 0), dtype=np.uint8), "has a size above 4294967295"),
    ],
)
def test_write_idx_refuses_what_idx_cannot_hold(tmp_path, array, expected):
    path = tmp_path / "out-idx"
    with pytest.raises(IDXFormatError, match=expected):
        write_idx(path, array)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def _gzip_stream(*pieces: bytes, zeros: int = 0) -> bytes:
    """A gzip file of ``pieces`` followed by ``zeros`` zero bytes, compressed as it is made."""
    compressor = zlib.compressobj(wbits=31)
    out = [compressor.compress(piece) for piece in pieces]
    block = bytes(1 << 20)
    for start in range(0, zeros, len(block)):
        out.append(compressor.compress(block[: min(len(block), zeros - start)]))
    return b"".join(out) + compressor.flush()


def _refused(path, expected) -> int:
    """The peak memory of read_idx(path), which must raise IDXFormatError matching ``expected``."""
    def read():
        with pytest.raises(IDXFormatError, match=expected):
            read_idx(path)

    return peak_memory(read)


LABELS_HEADER = bytes([0, 0, 0x08, 1]) + (1000).to_bytes(4, "big")  # 1,000 uint8 labels


@pytest.mark.parametrize(
    "content, expected, held",
    [
        # 1,000 labels, then 32 MB of zeros: a gzip bomb of 32 kB
        (_gzip_stream(LABELS_HEADER, zeros=32 << 20),
         r"has trailing bytes: .* needs 8 header \+ 1000 data = 1008 bytes; the file has more than 1008", 1008),
        # a raw header announcing (2**32 - 1)**2 bytes: refused from the file size, unread
        (bytes([0, 0, 0x08, 2]) + (2**32 - 1).to_bytes(4, "big") * 2 + bytes(100),
         "truncated: .* the file has 112 bytes", 112),
        # the same announcement, gzip-compressed, over 1 MB of zeros
        (_gzip_stream(bytes([0, 0, 0x08, 2]) + (2**32 - 1).to_bytes(4, "big") * 2, zeros=1 << 20),
         r"after gzip decompression\): truncated: .* the file has 1048588 bytes", 1 << 20),
    ],
    ids=["gzip-bomb", "raw-huge-claim", "gzip-huge-claim"],
)
def test_idx_memory_is_bounded_by_the_header_claim(tmp_path, content, expected, held):
    """A crafted file costs about what its header announces, or what it holds where that is
    less (``held``), never what a decompression bomb expands to."""
    path = tmp_path / "crafted-idx"
    path.write_bytes(content)
    assert _refused(path, expected) < 2 * held + (256 << 10)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_read_idx_refuses_a_device_a_fifo_and_a_directory(tmp_path):
    link = tmp_path / "train-labels-idx1-ubyte"
    link.symlink_to("/dev/zero")
    with pytest.raises(IDXFormatError, match=r"train-labels-idx1-ubyte is a character device, not a regular file"):
        read_idx(link)
    with pytest.raises(IDXFormatError, match="is a directory, not a regular file"):
        read_idx(tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)  # nobody writes to it: opening it must not wait for a writer
        with pytest.raises(IDXFormatError, match=r"is a FIFO \(named pipe\), not a regular file"):
            read_idx(fifo)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")


# --------------------------------------------------------------------------------------------
# Writing: IDX files and downloads go through the one atomic writer


def _write_labels(path: Path, count: int) -> None:
    write_idx(path, np.arange(count, dtype=np.uint8))


def _download_labels(path: Path, count: int) -> None:
    """Download (from a file:// URL) an IDX file of ``count`` labels to ``path``."""
    source = path.parent.parent / f"served-{count}"
    write_idx(source, np.arange(count, dtype=np.uint8))
    datasets._fetch(source.as_uri(), path, hashlib.md5(source.read_bytes()).hexdigest())


WRITERS = {"write_idx": _write_labels, "download": _download_labels}


@pytest.mark.parametrize("writer", WRITERS)
def test_idx_writes_and_downloads_fsync_the_file_and_its_folder(writer, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_mode), fsync(fd)))
    WRITERS[writer](folder / "labels-idx1-ubyte", 3)
    assert [stat.S_ISREG(mode) for mode in synced][-2:] == [True, False] and stat.S_ISDIR(synced[-1])
    assert read_idx(folder / "labels-idx1-ubyte").tolist() == [0, 1, 2]


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_idx_write_or_download_leaves_the_previous_file(writer, failing, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "labels-idx1-ubyte"
    WRITERS[writer](path, 3)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(f"simulated failure in os.{failing}")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="simulated failure"):
        WRITERS[writer](path, 5)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == [path.name]  # the temporary file is gone


@pytest.mark.skipif(os.name != "posix", reason="asks whether a process exists with os.kill(pid, 0)")
@pytest.mark.parametrize("writer", WRITERS)
def test_idx_writes_and_downloads_remove_the_temporary_files_of_dead_processes(writer, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    dead, alive = dead_process_id(), os.getppid()
    names = {
        f".train-images-idx3-ubyte.gz.{dead}.0123abcd.tmp": "removed",
        ".train-labels-idx1-ubyte.gz.k3_9zq0a.part": "removed",  # an earlier version's mkstemp name
        f".t10k-images-idx3-ubyte.gz.{alive}.0123abcd.tmp": "kept",  # its process runs
        ".t10k-labels-idx1-ubyte.gz.abcdefgh.part": "kept",  # changed lately
        "notes.part": "kept",
    }
    for name in names:
        (folder / name).write_bytes(b"partial")
        if "t10k-labels" not in name:
            make_stale(folder / name)
    WRITERS[writer](folder / "labels-idx1-ubyte", 3)
    kept = {p.name for p in folder.iterdir()} - {"labels-idx1-ubyte"}
    assert kept == {name for name, fate in names.items() if fate == "kept"}


# --------------------------------------------------------------------------------------------
# Dataset files: search order, errors, download


def write_mnist_files(folder: Path, n_train: int, n_test: int = 3, compress: bool = True):
    """Tiny MNIST-format files in ``folder``; labels encode n_train so tests can tell folders
    apart. Returns {file name: array}."""
    rng = np.random.default_rng(n_train)
    arrays = {
        FILE_NAMES[0]: rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        FILE_NAMES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        FILE_NAMES[2]: rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        FILE_NAMES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + ".gz" if compress else name), array, gzip=compress)
    return arrays


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty search places: no GDNET_DATA, a fresh user cache, a fresh system folder."""
    cache = tmp_path / "xdg-cache"
    system = tmp_path / "system-datasets"
    monkeypatch.delenv("GDNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", system)
    return {"cache": cache / "gdnet", "system": system, "tmp": tmp_path}


def test_root_folder_itself(places):
    root = places["tmp"] / "my-data"
    arrays = write_mnist_files(root, n_train=5, compress=False)
    train, test = mnist(root=root)
    np.testing.assert_array_equal(train.inputs, arrays[FILE_NAMES[0]])
    np.testing.assert_array_equal(test.inputs, arrays[FILE_NAMES[2]])
    assert train.inputs.dtype == np.uint8 and train.inputs.shape == (5, 28, 28)
    assert train.targets.dtype == np.int64 and train.targets.shape == (5,)
    assert train.classes == [str(d) for d in range(10)]
    assert train.num_classes == 10


def test_root_subfolder_named_after_dataset(places):
    root = places["tmp"] / "all-data"
    write_mnist_files(root / "fashion-mnist", n_train=6)
    train, _ = fashion_mnist(root=str(root))
    assert len(train) == 6
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"


def test_mixed_raw_and_gzip_files(places):
    root = places["tmp"] / "mixed"
    write_mnist_files(root, n_train=4, compress=True)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(root / "t10k-labels-idx1-ubyte", np.array([1, 2, 3], dtype=np.uint8))
    _, test = mnist(root=root)
    np.testing.assert_array_equal(test.targets, [1, 2, 3])


def test_search_order(places, monkeypatch):
    """root; without one $GDNET_DATA, then the user cache, then the system folder."""
    root = places["tmp"] / "root"
    env = places["tmp"] / "env"
    write_mnist_files(root / "mnist", n_train=1)
    write_mnist_files(env / "mnist", n_train=2)
    write_mnist_files(places["cache"] / "mnist", n_train=3)
    write_mnist_files(places["system"] / "mnist", n_train=4)
    monkeypatch.setenv("GDNET_DATA", str(env))
    assert len(mnist(root=root)[0]) == 1
    assert len(mnist()[0]) == 2
    monkeypatch.delenv("GDNET_DATA")
    assert len(mnist()[0]) == 3
    monkeypatch.setenv("XDG_CACHE_HOME", str(places["tmp"] / "other-cache"))
    assert len(mnist()[0]) == 4


def test_cache_defaults_to_home_dot_cache(places, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(places["tmp"] / "home"))
    write_mnist_files(places["tmp"] / "home" / ".cache" / "gdnet" / "mnist", n_train=7)
    assert len(mnist()[0]) == 7


def test_incomplete_folder_is_skipped(places, monkeypatch):
    env = places["tmp"] / "partial"
    write_mnist_files(env, n_train=2)
    (env / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("GDNET_DATA", str(env))
    write_mnist_files(places["system"] / "mnist", n_train=9)
    assert len(mnist()[0]) == 9


def test_missing_files_error_lists_every_place(places, monkeypatch):
    env = places["tmp"] / "partial"
    write_mnist_files(env, n_train=2)
    (env / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setenv("GDNET_DATA", str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for folder in (
        env, env / "fashion-mnist", places["cache"] / "fashion-mnist",
        places["system"] / "fashion-mnist",
    ):
        assert f"  {folder} (" in message
    assert "missing t10k-images-idx3-ubyte[.gz]" in message
    assert "no such folder" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "set GDNET_DATA" in message
    assert (f"download=True (--download on the gdnet command line) to fetch them into "
            f"{places['cache'] / 'fashion-mnist'}") in message


def test_explicit_root_is_the_only_place_searched(places):
    """A mistyped root is an error, not a silent switch to the system copy."""
    write_mnist_files(places["system"] / "mnist", n_train=9)
    root = places["tmp"] / "typo"
    with pytest.raises(DatasetNotFoundError) as info:
        mnist(root=root)
    message = str(info.value)
    assert f"  {root} (root): no such folder" in message
    assert f"  {root / 'mnist'} (root): no such folder" in message
    assert str(places["system"]) not in message.split("to get it:")[0]
    assert "put train-images-idx3-ubyte[.gz]" in message and str(root) in message
    assert "leave root unset" in message
    assert f"download=True (--download on the gdnet command line) to fetch them into {root / 'mnist'}" in message


@pytest.mark.parametrize(
    "replace, array, expected",
    [
        ("train-images-idx3-ubyte", np.zeros((2, 27, 28), np.uint8),
         r"expected shape \(N, 28, 28\)"),
        ("train-images-idx3-ubyte", np.zeros((2, 28, 28), np.float32), "uint8"),
        ("train-labels-idx1-ubyte", np.zeros(3, np.uint8), "3 labels for 2 images"),
        ("train-labels-idx1-ubyte", np.zeros((2, 1), np.uint8), r"expected shape \(N,\) uint8"),
        ("train-labels-idx1-ubyte", np.array([0, 12], np.uint8), r"largest class label is 12"),
    ],
)
def test_wrong_file_contents_are_clear_errors(places, replace, array, expected):
    root = places["tmp"] / "data"
    write_mnist_files(root, n_train=2)
    (root / f"{replace}.gz").unlink()
    write_idx(root / replace, array)
    with pytest.raises(ValueError, match=expected):
        mnist(root=root)


SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def real_fashion_mnist():
    if not SYSTEM_FASHION_MNIST.is_dir():
        pytest.skip("the Debian package dataset-fashion-mnist is not installed")
    return fashion_mnist(root=SYSTEM_FASHION_MNIST)


def test_real_fashion_mnist(real_fashion_mnist):
    train, test = real_fashion_mnist
    assert train.inputs.shape == (60000, 28, 28) and train.inputs.dtype == np.uint8
    assert train.targets.shape == (60000,) and train.targets.dtype == np.int64
    assert test.inputs.shape == (10000, 28, 28) and test.targets.shape == (10000,)
    for split in (train, test):
        assert split.targets.min() == 0 and split.targets.max() == 9
        assert split.num_classes == 10 and len(split.classes) == 10
    # Fashion-MNIST is balanced: 6000 training and 1000 test images of each class
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served; yields (base URL, folder,
    list of requested paths)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _md5s(folder: Path) -> dict[str, str]:
    return {f"{name}.gz": hashlib.md5((folder / f"{name}.gz").read_bytes()).hexdigest()
            for name in FILE_NAMES}


def _serve_source(monkeypatch, mirrors, md5):
    source = datasets.DatasetSource(
        mirrors=tuple(mirrors), md5=md5, classes=tuple(str(d) for d in range(10))
    )
    monkeypatch.setitem(datasets.SOURCES, "mnist", source)


def test_download_into_user_cache(places, file_server, monkeypatch):
    base, served, requests = file_server
    arrays = write_mnist_files(served, n_train=5)
    _serve_source(monkeypatch, [base], _md5s(served))
    train, test = mnist(download=True)
    np.testing.assert_array_equal(train.inputs, arrays[FILE_NAMES[0]])
    np.testing.assert_array_equal(test.targets, arrays[FILE_NAMES[3]])
    cached = places["cache"] / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{n}.gz" for n in FILE_NAMES)
    assert len(requests) == 4
    # found in the cache from now on: no more requests
    assert len(mnist(download=True)[0]) == 5
    assert len(requests) == 4


def test_download_into_root(places, file_server, monkeypatch):
    base, served, _ = file_server
    write_mnist_files(served, n_train=4)
    _serve_source(monkeypatch, [base], _md5s(served))
    root = places["tmp"] / "my-data"
    assert len(mnist(root=root, download=True)[0]) == 4
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(
        f"{n}.gz" for n in FILE_NAMES
    )
    assert not places["cache"].exists()


def test_the_command_downloads_with_its_download_flag(places, file_server, monkeypatch, capsys):
    """What the missing-dataset message suggests works: `gdnet train --download`."""
    base, served, requests = file_server
    write_mnist_files(served, n_train=6)
    _serve_source(monkeypatch, [base], _md5s(served))
    argv = ["train", "--dataset", "mnist", "--backend", "numpy", "--hidden", "8", "--epochs", "1", "--quiet"]
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert "--download on the gdnet command line" in capsys.readouterr().err and requests == []
    assert cli.main([*argv, "--download"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("test accuracy:")
    assert len(requests) == 4 and len(list((places["cache"] / "mnist").iterdir())) == 4


def test_download_tries_the_next_mirror(places, file_server, monkeypatch):
    base, served, requests = file_server
    write_mnist_files(served / "good", n_train=3)
    _serve_source(monkeypatch, [base + "absent/", base + "good/"], _md5s(served / "good"))
    assert len(mnist(download=True)[0]) == 3
    assert sum(path.startswith("/absent/") for path in requests) == 1  # failed once, then moved on


def test_download_checksum_mismatch_leaves_no_file(places, file_server, monkeypatch):
    base, served, _ = file_server
    write_mnist_files(served, n_train=3)
    md5 = _md5s(served)
    md5["t10k-images-idx3-ubyte.gz"] = "0" * 32
    _serve_source(monkeypatch, [base], md5)
    with pytest.raises(DatasetDownloadError) as info:
        mnist(download=True)
    message = str(info.value)
    assert "checksum mismatch" in message
    assert "t10k-images-idx3-ubyte.gz" in message
    assert f"expected {'0' * 32}" in message
    assert _md5s(served)["t10k-images-idx3-ubyte.gz"] in message
    cached = places["cache"] / "mnist"
    names = sorted(p.name for p in cached.iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in names
    assert not [name for name in names if name.startswith(".")]  # no temporary file


def test_download_unreachable_names_the_url(places, file_server, monkeypatch):
    base, served, _ = file_server
    _serve_source(monkeypatch, [base + "nothing-here/"], {f"{n}.gz": "0" * 32 for n in FILE_NAMES})
    with pytest.raises(DatasetDownloadError) as info:
        mnist(download=True)
    message = str(info.value)
    assert base + "nothing-here/train-images-idx3-ubyte.gz" in message
    assert "404" in message
    assert "GDNET_DATA" in message


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; expected one of"):
        datasets.load_mnist_family("cifar10")


def test_known_checksums_are_the_published_ones():
    assert datasets.SOURCES["fashion-mnist"].md5["train-images-idx3-ubyte.gz"] == (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    )
    assert datasets.SOURCES["mnist"].md5["t10k-labels-idx1-ubyte.gz"] == (
        "ec29112dd5afa0611ce80d1b7f02629c"
    )
    for source in datasets.SOURCES.values():
        assert sorted(source.md5) == sorted(f"{n}.gz" for n in FILE_NAMES)
        assert all(len(digest) == 32 for digest in source.md5.values())


# --------------------------------------------------------------------------------------------
# ArrayDataset


def test_array_dataset_basics():
    inputs = np.arange(12, dtype=np.uint8).reshape(4, 3)
    labels = np.array([0, 2, 1, 2])
    dataset = ArrayDataset(inputs, labels)
    assert len(dataset) == 4
    x, y = dataset[1]
    np.testing.assert_array_equal(x, [3, 4, 5])
    assert y == 2
    assert dataset.num_classes == 3
    assert dataset.classes is None
    assert dataset.inputs is inputs and dataset.targets is labels


def test_array_dataset_without_targets_and_with_float_targets():
    no_targets = ArrayDataset([[1.0, 2.0], [3.0, 4.0]])
    assert no_targets[0][1] is None and no_targets.num_classes is None
    regression = ArrayDataset(np.zeros((3, 2)), np.array([0.5, -1.0, 2.0]))
    assert regression.num_classes is None


def test_array_dataset_accepts_device_arrays(backend):
    inputs = gd.tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    dataset = ArrayDataset(inputs, np.array([0, 1, 0]))
    assert isinstance(dataset.inputs, np.ndarray)
    np.testing.assert_array_equal(dataset.inputs, np.arange(6).reshape(3, 2))


@pytest.mark.parametrize(
    "inputs, targets, kwargs, error, expected",
    [
        (np.zeros((5, 2)), np.zeros(4, np.int64), {}, ValueError,
         r"inputs has 5 examples .* targets has 4 .* expected the same first dimension"),
        (np.array([[1.0, np.nan], [np.nan, 0.0]]), None, {}, ValueError,
         r"inputs contains 2 non-finite value\(s\) \(NaN or inf\), the first at index \(0, 1\): nan"),
        (np.zeros((3, 2)), np.array([0.5, np.nan, 1.0]), {}, ValueError,
         r"targets contains 1 non-finite value\(s\) \(NaN or inf\), the first at index \(1,\): nan"),
        (np.array([[1.0, np.inf], [-np.inf, 0.0]], np.float32), np.array([0, 1]), {}, ValueError,
         r"inputs contains 2 non-finite value\(s\) \(NaN or inf\), the first at index \(0, 1\): inf"),
        (np.zeros((2, 2)), np.array([-np.inf, 1.0]), {}, ValueError,
         r"targets contains 1 non-finite value\(s\) \(NaN or inf\), the first at index \(0,\): -inf"),
        (np.zeros((3, 2)), np.array([0, -1, 2]), {}, ValueError,
         "must be non-negative; the smallest label is -1"),
        (np.zeros((3, 2)), np.array([0.0, 1.0, 2.0]), {"num_classes": 3}, ValueError,
         r"class labels have dtype float64; expected integer labels in \[0, 3\)"),
        (np.zeros((3, 2)), np.array([0, 1, 3]), {"num_classes": 3}, ValueError,
         r"largest class label is 3; expected labels in \[0, 3\)"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), {"classes": ["a", "b"], "num_classes": 3},
         ValueError, "num_classes=3 but 2 class names"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), {"num_classes": 0}, ValueError,
         "num_classes must be a positive int"),
        (np.zeros((3, 2)), None, {"num_classes": 3}, ValueError, "given without targets"),
        (np.array(3.0), None, {}, ValueError, "0-d array; expected shape"),
        (np.zeros((3, 2), dtype=bool), None, {}, TypeError,
         "inputs has dtype bool; expected an integer or floating dtype"),
        (np.zeros((3, 2)), np.array(["a", "b", "c"]), {}, TypeError, "targets has dtype"),
        (np.zeros((3, 2)), np.array(1), {}, ValueError, "targets has a 0-d array"),
    ],
    ids=[
        "length-mismatch", "nan-inputs", "nan-targets", "inf-inputs", "inf-targets", "negative-label", "float-labels",
        "label-too-large", "classes-disagree", "zero-classes", "classes-without-targets",
        "0d-inputs", "bool-inputs", "string-targets", "0d-targets",
    ],
)
def test_array_dataset_errors(inputs, targets, kwargs, error, expected):
    with pytest.raises(error, match=expected):
        ArrayDataset(inputs, targets, **kwargs)


def test_array_dataset_refuses_non_arrays():
    with pytest.raises(TypeError, match="inputs must be an array"):
        ArrayDataset([[1, 2], [3]])


# --------------------------------------------------------------------------------------------
# DataLoader


def image_dataset(n: int = 10, seed: int = 0) -> ArrayDataset:
    """n uint8 'images' of shape (2, 3) whose label is their index (so orders can be read)."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 2, 3), dtype=np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 0, 255  # the range ends are present
    return ArrayDataset(images, np.arange(n, dtype=np.int64))


def epoch_order(loader) -> list[int]:
    return [int(i) for _, labels in loader for i in labels.numpy()]


def test_loader_batches_on_the_device(backend):
    dataset = image_dataset()
    loader = DataLoader(dataset, batch_size=4)
    assert loader.resident  # numpy and array_api_strict report host memory: everything fits
    seen = 0
    for inputs, labels in loader:
        assert isinstance(inputs, gd.Tensor) and isinstance(labels, gd.Tensor)
        assert inputs.data.device == backend.device and labels.data.device == backend.device
        assert inputs.dtype == backend.xp.float32
        assert labels.dtype == backend.xp.int64
        assert not inputs.requires_grad
        values = inputs.numpy()
        assert values.min() >= 0.0 and values.max() <= 1.0
        expected = dataset.inputs[seen : seen + len(values)].astype(np.float32)
        expected *= np.float32(1 / 255)
        np.testing.assert_allclose(values, expected, rtol=1e-6)
        seen += len(values)
    assert seen == len(dataset)
    assert loader.epoch == 1


def test_uint8_extremes_map_to_zero_and_one(backend):
    inputs = np.array([[0], [255]], dtype=np.uint8)
    (batch, _), = DataLoader(ArrayDataset(inputs, np.array([0, 1])), batch_size=2)
    assert batch.numpy().tolist() == [[0.0], [1.0]]


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_loader_last_partial_batch(backend, drop_last, sizes):
    loader = DataLoader(image_dataset(10), batch_size=4, drop_last=drop_last)
    assert len(loader) == len(sizes)
    got = [(inputs.shape[0], labels.shape[0]) for inputs, labels in loader]
    assert got == [(size, size) for size in sizes]
    assert epoch_order(loader) == list(range(sum(sizes)))


def test_loader_whole_dataset_is_one_batch(backend):
    dataset = image_dataset(10)
    loader = DataLoader(dataset, batch_size=len(dataset), shuffle=True, seed=1)
    assert len(loader) == 1
    batches = list(loader)
    assert len(batches) == 1
    assert batches[0][0].shape == (10, 2, 3)
    assert sorted(batches[0][1].numpy().tolist()) == list(range(10))


def test_loader_stochastic_batches(backend):
    loader = DataLoader(image_dataset(5), batch_size=1, shuffle=True, seed=2)
    batches = list(loader)
    assert len(loader) == 5 and len(batches) == 5
    assert all(inputs.shape == (1, 2, 3) and labels.shape == (1,) for inputs, labels in batches)


def test_shuffled_epoch_visits_each_example_once_and_epochs_differ(backend):
    loader = DataLoader(image_dataset(50), batch_size=8, shuffle=True, seed=3)
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first) == list(range(50))
    assert sorted(second) == list(range(50))
    assert first != list(range(50))
    assert first != second
    assert loader.epoch == 2


def test_shuffled_batches_carry_their_own_images(backend):
    dataset = image_dataset(20)
    for inputs, labels in DataLoader(dataset, batch_size=6, shuffle=True, seed=4):
        expected = dataset.inputs[labels.numpy()].astype(np.float32) * np.float32(1 / 255)
        np.testing.assert_allclose(inputs.numpy(), expected, rtol=1e-6)


def test_same_seed_same_order(backend):
    orders = [epoch_order(DataLoader(image_dataset(30), batch_size=4, shuffle=True, seed=7))
              for _ in range(2)]
    assert orders[0] == orders[1]
    other = epoch_order(DataLoader(image_dataset(30), batch_size=4, shuffle=True, seed=8))
    assert other != orders[0]


def test_default_seed_follows_manual_seed(backend):
    gd.manual_seed(11)
    first = epoch_order(DataLoader(image_dataset(30), batch_size=4, shuffle=True))
    gd.manual_seed(11)
    again = epoch_order(DataLoader(image_dataset(30), batch_size=4, shuffle=True))
    gd.manual_seed(12)
    other = epoch_order(DataLoader(image_dataset(30), batch_size=4, shuffle=True))
    assert first == again
    assert first != other


@pytest.mark.parametrize("shuffle", [False, True])
def test_resident_and_streamed_batches_are_identical(backend, shuffle):
    dataset = image_dataset(23)
    resident = DataLoader(dataset, batch_size=5, shuffle=shuffle, seed=5)
    streamed = DataLoader(dataset, batch_size=5, shuffle=shuffle, seed=5, resident=False)
    assert resident.resident and not streamed.resident
    for _ in range(2):
        pairs = list(zip(resident, streamed, strict=True))
        assert len(pairs) == 5
        for (x_res, y_res), (x_str, y_str) in pairs:
            assert x_str.data.device == backend.device and y_str.data.device == backend.device
            assert x_str.dtype == backend.xp.float32 and y_str.dtype == backend.xp.int64
            np.testing.assert_array_equal(x_res.numpy(), x_str.numpy())
            np.testing.assert_array_equal(y_res.numpy(), y_str.numpy())


def _count_uploads(monkeypatch, backend) -> list[int]:
    calls: list[int] = []
    upload = backend.asarray

    def counting(obj, dtype=None):
        calls.append(1)
        return upload(obj, dtype=dtype)

    monkeypatch.setattr(backend, "asarray", counting)
    return calls


def test_resident_epoch_moves_only_the_permutation(backend, monkeypatch):
    shuffled = DataLoader(image_dataset(40), batch_size=4, shuffle=True, seed=1)
    in_order = DataLoader(image_dataset(40), batch_size=4)
    calls = _count_uploads(monkeypatch, backend)
    assert len(list(shuffled)) == 10
    assert len(calls) == 1  # the epoch's permutation; no per-batch transfer
    assert len(list(in_order)) == 10
    assert len(calls) == 1


def test_streamed_batches_are_copied_one_ahead(backend, monkeypatch):
    loader = DataLoader(image_dataset(12), batch_size=4, resident=False)
    calls = _count_uploads(monkeypatch, backend)
    batches = iter(loader)
    next(batches)
    assert len(calls) == 4  # inputs and labels of the first batch and of the next
    next(batches)
    assert len(calls) == 6
    next(batches)
    assert len(calls) == 6  # nothing left to fetch ahead
    assert next(batches, None) is None


def test_residency_follows_free_device_memory(backend, monkeypatch):
    dataset = image_dataset(10)  # 60 bytes of images + 80 of int64 labels
    monkeypatch.setattr(backend, "memory_free", lambda: 282)
    assert DataLoader(dataset, batch_size=2).resident
    monkeypatch.setattr(backend, "memory_free", lambda: 281)
    assert not DataLoader(dataset, batch_size=2).resident
    assert DataLoader(dataset, batch_size=2, resident=True).resident
    monkeypatch.setattr(backend, "memory_free", lambda: 139)
    with pytest.raises(ValueError, match="needs 140 bytes .* and 139 are free"):
        DataLoader(dataset, batch_size=2, resident=True)


def test_loader_keeps_the_backend_it_was_made_on(backend):
    loader = DataLoader(image_dataset(6), batch_size=3)
    with gd.use_backend("array_api_strict", "device1"):
        inputs, labels = next(iter(loader))
    assert loader.backend is backend
    assert inputs.data.device == backend.device
    assert labels.data.device == backend.device


def test_state_dict_resumes_the_same_order(backend):
    loader = DataLoader(image_dataset(30), batch_size=7, shuffle=True, seed=9)
    epoch_order(loader)
    state = loader.state_dict()
    expected = [epoch_order(loader), epoch_order(loader)]
    resumed = DataLoader(image_dataset(30), batch_size=7, shuffle=True, seed=123)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    assert [epoch_order(resumed), epoch_order(resumed)] == expected
    assert resumed.epoch == 3
    assert resumed.state_dict()["generator"] == loader.state_dict()["generator"]


@pytest.mark.parametrize(
    "state, expected",
    [
        ({"epoch": 1}, "expected a dict with keys"),
        ("not a state", "expected a dict with keys"),
        ({"seed": 1, "epoch": 0, "generator": {}, "num_examples": 31}, "dataset of 31 examples"),
        ({"seed": 1, "epoch": -1, "generator": {}, "num_examples": 30}, "non-negative int"),
        ({"seed": 1, "epoch": 0, "generator": {"bit": 1}, "num_examples": 30},
         "not a generator state"),
    ],
)
def test_load_state_dict_errors(state, expected):
    loader = DataLoader(image_dataset(30), batch_size=7, shuffle=True, seed=9)
    with pytest.raises(ValueError, match=expected):
        loader.load_state_dict(state)


@pytest.mark.parametrize(
    "batch_size, error",
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("4", TypeError), (True, TypeError),
     (None, TypeError)],
)
def test_bad_batch_size(batch_size, error):
    with pytest.raises(error, match=rf"batch_size must be a positive int; got {batch_size!r}"):
        DataLoader(image_dataset(10), batch_size=batch_size)


@pytest.mark.parametrize(
    "kwargs, error, expected",
    [
        ({"shuffle": 1}, TypeError, "shuffle must be True or False; got 1"),
        ({"drop_last": "yes"}, TypeError, "drop_last must be True or False"),
        ({"resident": "auto"}, TypeError, "resident must be True or False"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int or None; got -1"),
        ({"seed": 1.5}, ValueError, "seed must be a non-negative int or None"),
        ({"scale": float("nan")}, ValueError, "scale must be a finite number or None"),
        ({"scale": "1/255"}, ValueError, "scale must be a finite number or None"),
        ({"batch_size": 11, "drop_last": True}, ValueError,
         "batch_size=11 larger than the dataset .10 examples. gives no batches"),
    ],
)
def test_bad_loader_options(kwargs, error, expected):
    with pytest.raises(error, match=expected):
        DataLoader(image_dataset(10), **kwargs)


def test_bad_dataset_argument():
    expected = "ArrayDataset or an .inputs, targets. tuple of host arrays; got list"
    with pytest.raises(TypeError, match=expected):
        DataLoader([np.zeros(3)], batch_size=1)
    with pytest.raises(TypeError, match="got tuple of length 3"):
        DataLoader((np.zeros(3), np.zeros(3), np.zeros(3)), batch_size=1)
    with pytest.raises(ValueError, match="the dataset is empty"):
        DataLoader(ArrayDataset(np.zeros((0, 2)), np.zeros(0, np.int64)), batch_size=1)


def test_tuple_dataset_float_data_and_scale(backend):
    features = np.array([[0.5, -2.0], [3.0, 4.0], [1.0, 1.0]])  # float64 on the host
    targets = np.array([0.25, 1.5, -1.0])
    (inputs, values), = DataLoader((features, targets), batch_size=3)
    assert inputs.dtype == backend.xp.float32 and values.dtype == backend.xp.float32
    np.testing.assert_array_equal(inputs.numpy(), features.astype(np.float32))  # unscaled
    np.testing.assert_array_equal(values.numpy(), targets.astype(np.float32))
    (scaled, _), = DataLoader((features, targets), batch_size=3, scale=2)
    np.testing.assert_array_equal(scaled.numpy(), features.astype(np.float32) * 2)
    (pixels, _), = DataLoader(image_dataset(4), batch_size=4, scale=1.0)
    np.testing.assert_array_equal(pixels.numpy(), image_dataset(4).inputs.astype(np.float32))


@pytest.mark.parametrize("resident", [True, False])
def test_dataset_without_targets(backend, resident):
    loader = DataLoader(ArrayDataset(np.arange(5, dtype=np.uint8)), batch_size=2, resident=resident)
    batches = list(loader)
    assert [inputs.shape for inputs, _ in batches] == [(2,), (2,), (1,)]
    assert all(targets is None for _, targets in batches)


def test_batches_do_not_alias_the_dataset(backend):
    features = np.ones((4, 2), dtype=np.float32)
    labels = np.arange(4)
    for resident in (True, False):
        for shuffle in (True, False):
            loader = DataLoader(
                (features, labels), batch_size=2, resident=resident, shuffle=shuffle
            )
            for inputs, targets in loader:
                inputs.data[...] = 7.0
                targets.data[...] = 9
            for inputs, targets in loader:
                assert inputs.numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]
                assert max(targets.numpy().tolist()) < 4
    np.testing.assert_array_equal(features, 1.0)
    np.testing.assert_array_equal(labels, np.arange(4))


def test_real_fashion_mnist_through_the_loader(backend, real_fashion_mnist):
    _, test = real_fashion_mnist
    loader = DataLoader(test, batch_size=4096, shuffle=True, seed=0)
    assert len(loader) == 3
    inputs, labels = next(iter(loader))
    assert inputs.shape == (4096, 28, 28) and labels.shape == (4096,)
    values = inputs.numpy()
    assert 0.0 <= values.min() and values.max() <= 1.0
    assert set(labels.numpy().tolist()) == set(range(10))
