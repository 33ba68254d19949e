"""Choosing the backend, creating tensors on it, seeding, and keeping array libraries out of core."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import gdnet as gd
from gdnet import backends

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUPY_WORKS = backends.backend_class("cupy").is_available()


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "GDNET_BACKEND"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
    )


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        gd.set_backend("tensorflow")
    message = str(info.value)
    assert "'tensorflow'" in message
    for name in ("numpy", "array_api_strict", "cupy", "auto"):
        assert name in message


def test_unknown_backend_leaves_the_active_one_alone():
    with gd.use_backend("numpy"):
        before = gd.get_backend()
        with pytest.raises(ValueError):
            gd.set_backend("jax")
        assert gd.get_backend() is before


@pytest.mark.skipif(CUPY_WORKS, reason="this machine has a working CuPy")
def test_cupy_without_a_gpu_is_a_clear_error():
    with gd.use_backend("numpy"):
        before = gd.get_backend()
        with pytest.raises(gd.BackendUnavailableError) as info:
            gd.set_backend("cupy")
        message = str(info.value)
        assert "'cupy'" in message
        assert "CUDA" in message and ("install" in message or "no CUDA device" in message)
        assert gd.get_backend() is before
    assert issubclass(gd.BackendUnavailableError, RuntimeError)
    assert "cupy" not in gd.available_backends()


@pytest.mark.skipif(CUPY_WORKS, reason="this machine has a working CuPy")
def test_auto_picks_numpy_without_a_gpu():
    with gd.use_backend("auto") as chosen:
        assert chosen.name == "numpy"
        assert gd.get_backend() is chosen


@pytest.mark.skipif(not CUPY_WORKS, reason="needs a CUDA device")
@pytest.mark.cupy
def test_auto_picks_cupy_with_a_gpu():
    with gd.use_backend("auto") as chosen:
        assert chosen.name == "cupy"


def test_available_backends():
    available = gd.available_backends()
    assert "numpy" in available
    assert set(available) <= set(backends.names())
    assert ("array_api_strict" in available) == (
        backends.backend_class("array_api_strict").unavailable_reason() is None
    )


def test_use_backend_restores_the_previous_one():
    pytest.importorskip("array_api_strict")
    with gd.use_backend("numpy") as outer:
        with gd.use_backend("array_api_strict", "device1") as inner:
            assert gd.get_backend() is inner
            assert inner.name == "array_api_strict" and "device1" in inner.describe()
        assert gd.get_backend() is outer
        with pytest.raises(KeyError):
            with gd.use_backend("array_api_strict"):
                raise KeyError
        assert gd.get_backend() is outer


def test_name_colon_device_spelling():
    pytest.importorskip("array_api_strict")
    with gd.use_backend("numpy"):
        chosen = gd.set_backend("array_api_strict:no_float64")
        assert chosen.describe() == "array_api_strict on no_float64"
        assert not chosen.supports_dtype("float64") and chosen.supports_dtype("float32")


@pytest.mark.parametrize(
    "name, device, message",
    [
        ("numpy", "cuda", "numpy backend has one device, 'cpu'; got 'cuda'"),
        ("array_api_strict", "device7", "unknown array_api_strict device 'device7'"),
    ],
)
def test_unknown_devices(name, device, message):
    pytest.importorskip("array_api_strict")
    with gd.use_backend("numpy"):
        with pytest.raises(ValueError, match=message):
            gd.set_backend(name, device)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("numpy", "numpy on cpu"),
        ("array_api_strict", "array_api_strict on CPU_DEVICE"),
        ("array_api_strict:device1", "array_api_strict on device1"),
    ],
)
def test_gdnet_backend_environment_variable(value, expected):
    if value.startswith("array_api_strict"):
        pytest.importorskip("array_api_strict")
    result = _run_python(
        "import gdnet as gd; print(gd.get_backend().describe()); print(gd.zeros((2,)).device)",
        GDNET_BACKEND=value,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == expected


def test_gdnet_backend_environment_variable_with_a_bad_name():
    result = _run_python("import gdnet as gd; gd.get_backend()", GDNET_BACKEND="nosuch")
    assert result.returncode != 0
    assert "unknown backend 'nosuch'" in result.stderr


def test_numpy_is_the_default_without_the_environment_variable():
    result = _run_python("import gdnet as gd; print(gd.get_backend().name)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


def test_importing_and_training_leaves_cupy_unimported():
    code = """
import sys
import numpy as np
import gdnet as gd
model = gd.nn.Sequential(gd.nn.Flatten(), gd.nn.Linear(12, 5), gd.nn.ReLU(), gd.nn.Linear(5, 3))
opt = gd.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x = gd.tensor(np.random.default_rng(0).normal(size=(4, 3, 4)), dtype="float32")
y = gd.tensor(np.array([0, 2, 1, 2]))
for _ in range(2):
    loss = gd.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("cupy", "cupyx", "torch", "mpi4py")))
"""
    result = _run_python(code, GDNET_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


BANNED = {"numpy", "cupy", "cupyx", "torch", "array_api_strict", "mpi4py", "safetensors"}


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def test_core_never_imports_an_array_library():
    files = sorted((ROOT / "gdnet").rglob("*.py"))
    assert len(files) >= 10
    offenders = {}
    for path in files:
        banned = _imported_roots(ast.parse(path.read_text(), filename=str(path))) & BANNED
        if banned:
            offenders[str(path.relative_to(ROOT))] = sorted(banned)
    assert offenders == {}


def test_the_import_checker_sees_each_spelling():
    code = (
        "import numpy as np\nfrom cupyx.scipy import ndimage\nimport os, torch.nn\n"
        "def f():\n    import array_api_strict\n    importlib.import_module('cupy')\n"
        "from . import ops\n"
    )
    assert _imported_roots(ast.parse(code)) == {"numpy", "cupyx", "os", "torch", "array_api_strict", "cupy"}


# -- creating tensors and drawing numbers on the active backend ---------------------------------
def test_manual_seed_repeats_randn(backend):
    gd.manual_seed(7)
    first = gd.randn(3, 4).numpy()
    gd.manual_seed(7)
    again = gd.randn(3, 4)
    np.testing.assert_array_equal(again.numpy(), first)
    assert again.device == backend.device and again.dtype == backend.xp.float32
    assert not np.array_equal(gd.randn(3, 4).numpy(), first)  # the stream moves on
    gd.manual_seed(8)
    assert not np.array_equal(gd.randn(3, 4).numpy(), first)


def test_randn_and_rand_statistics(backend):
    gd.manual_seed(0)
    normal = gd.randn((200, 100)).numpy()
    uniform = gd.rand(200, 100).numpy()
    assert abs(normal.mean()) < 0.03 and abs(normal.std() - 1.0) < 0.03
    assert uniform.min() >= 0.0 and uniform.max() < 1.0 and abs(uniform.mean() - 0.5) < 0.02


def test_creation_on_the_active_backend(backend):
    xp = backend.xp
    for t in (gd.zeros((2, 3)), gd.ones([2, 3]), gd.tensor([[1.0, 2.0, 3.0]] * 2)):
        assert t.device == backend.device
        assert t.dtype == xp.float32 == gd.default_float()
        assert t.shape == (2, 3) and not t.requires_grad
    assert gd.tensor([1, 2]).dtype == xp.int64
    assert gd.tensor(np.array([1.0], dtype=np.float32)).dtype == xp.float32
    assert gd.zeros((2,), dtype="int64").dtype == xp.int64
    assert gd.ones((1,), requires_grad=True).requires_grad


def test_tensor_copies_its_data(backend):
    host = np.array([1.0, 2.0], dtype=np.float32)
    t = gd.tensor(host)
    host[0] = 100.0
    assert t.tolist() == [1.0, 2.0]
    same_place = gd.tensor(t)
    t.data[...] = 5.0
    assert same_place.tolist() == [1.0, 2.0]


def test_sgd_does_not_write_into_the_callers_array(backend):
    host = np.array([1.0, 2.0], dtype=np.float32)
    w = gd.tensor(host, requires_grad=True)
    w.grad = gd.tensor([1.0, 1.0])
    gd.optim.SGD([w], lr=0.5).step()
    assert w.tolist() == [0.5, 1.5] and host.tolist() == [1.0, 2.0]


def test_tensor_moves_an_array_of_another_backend_through_the_host(backend):
    with gd.use_backend("numpy"):
        source = gd.tensor([1.0, 2.0])
    moved = gd.tensor(source)
    assert moved.device == backend.device and moved.xp is backend.xp
    assert moved.tolist() == [1.0, 2.0]


def test_unknown_dtype_name(backend):
    with pytest.raises(ValueError, match="unknown dtype 'float17'"):
        gd.zeros((2,), dtype="float17")


def test_backend_surface(backend):
    assert backend.fast_path("no_such_kernel") is None
    host = backend.to_host(backend.asarray(np.array([1.0, 2.0]), dtype=backend.xp.float32))
    assert isinstance(host, np.ndarray) and host.tolist() == [1.0, 2.0]
    backend.synchronize()
    assert backend.name in repr(backend)
    generator = gd._backend.device_rng(backend)
    assert tuple(generator.permutation(5).shape) == (5,)
    assert sorted(gd.Tensor(generator.permutation(5)).tolist()) == [0, 1, 2, 3, 4]


def test_python_floats_keep_the_precision_asked_for(backend, float_dtype):
    t = gd.tensor([0.1, 1 / 3], dtype=float_dtype)
    assert t.dtype == getattr(backend.xp, float_dtype)
    expected = np.array([0.1, 1 / 3]).astype(float_dtype)
    np.testing.assert_array_equal(t.numpy(), expected)
    assert gd.tensor(0.1).dtype == backend.xp.float32


# -- the numpy backend's namespace ---------------------------------------------------------------
def _numpy_cases():
    """(name, args, kwargs) calls covering each directly bound function's arguments."""
    rng = np.random.default_rng(0)
    floats = rng.normal(size=(3, 4, 5)).astype(np.float32)
    ints = rng.integers(-5, 5, size=(4, 6)).astype(np.int8)
    flags = ints > 0
    cases = []
    for array in (floats, ints, flags, np.float32(2.5)):
        for axis in (None, 0, -1, (0, 1)):
            if np.ndim(array) == 0 and axis is not None:
                continue
            for keepdims in (False, True):
                cases.append(("sum", (array,), dict(axis=axis, keepdims=keepdims)))
                cases.append(("mean", (array,), dict(axis=axis, keepdims=keepdims)))
        cases.append(("sum", (array,), dict(dtype=np.float64)))
        cases.append(("astype", (array, np.float64), {}))
        cases.append(("astype", (array, np.float32), dict(copy=False)))
        cases.append(("astype", (array, np.int64), dict(device="cpu")))
    wide = rng.normal(size=(3, 70001)).astype(np.float32)  # sums whose float32 division rounds
    cases += [
        ("mean", (floats.astype(np.float64),), dict(axis=1)),
        ("mean", (floats.astype(np.float16),), dict(axis=0)),  # float16: np.mean sums in float32
        ("mean", (wide,), dict(axis=1)),
        ("mean", (wide.mT,), dict(axis=0, keepdims=True)),
        ("reshape", (floats, (12, 5)), {}),
        ("reshape", (floats, (-1,)), {}),
        ("reshape", (floats, [3, 20]), dict(copy=True)),
        ("reshape", (floats.mT, (3, 20)), {}),  # not contiguous: a copy
        ("take", (floats, np.array([2, 0, 2])), dict(axis=0)),
        ("take", (ints, np.array([5, 1])), dict(axis=1)),
        ("take", (ints, np.array([0, 23])), {}),
        ("matmul", (floats, floats.mT), {}),
        ("matrix_transpose", (floats,), {}),
        ("matrix_transpose", (ints[:, :4],), {}),
        ("matmul", (ints[:, :4], floats[0]), {}),
        ("ones", ((2, 3),), dict(dtype=np.float32)),
        ("ones", ((),), dict(dtype=np.int64, device="cpu")),
        ("zeros", ((4,),), {}),
        ("ones", ((3, 2),), dict(dtype=np.bool_)),
        ("full", ((2, 2), 1.5), dict(dtype=np.float32)),
        ("full", ((2, 2), 1.5), dict(dtype=np.int32)),
        ("full", ((2,), 200), dict(dtype=np.uint8)),
        ("full", ((), True), dict(dtype=np.float64)),
        ("full", ((3,), 7), dict(device="cpu")),
    ]
    return cases


@pytest.mark.parametrize("name, args, kwargs", _numpy_cases())
def test_numpy_namespace_direct_calls_equal_what_they_replace(name, args, kwargs):
    from gdnet.backends import numpy_backend

    direct, replaced = numpy_backend.DIRECT[name]
    got, expected = direct(*args, **kwargs), replaced(*args, **kwargs)
    assert type(got) is type(expected) and got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if name in ("reshape", "astype", "matrix_transpose"):  # a view or a copy exactly where the replaced one does
        assert np.shares_memory(got, args[0]) == np.shares_memory(expected, args[0])


@pytest.mark.parametrize("shape", [(64, 300, 900), (900, 300, 64), (3, 3000, 3000)], ids=["columns", "rows", "thin"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_matmul_splits_large_products_over_threads_with_the_same_result(monkeypatch, shape, dtype):
    from gdnet.backends import numpy_threads

    monkeypatch.setattr(numpy_threads, "_count", 2)
    m, k, n = shape
    a, b = np.random.default_rng(0).normal(size=(m, k)).astype(dtype), np.random.default_rng(1).normal(size=(n, k))
    b = b.astype(dtype).T  # a transposed operand, as Linear's weight
    parts = []
    monkeypatch.setattr(numpy_threads, "parallel", lambda work, count, size: parts.append(count) or work(0, count))
    got = numpy_threads.matmul(a, b)
    assert parts == [max(m, n)] and got.flags.c_contiguous
    # the parts' sums may round differently from one BLAS call's (sums of ~k terms of size ~sqrt(k))
    tolerance = dict(rtol=1e-5, atol=1e-4) if dtype == "float32" else dict(rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(got, np.matmul(a, b), **tolerance)
    monkeypatch.undo()
    monkeypatch.setattr(numpy_threads, "_count", 2)
    np.testing.assert_allclose(numpy_threads.matmul(a, b), np.matmul(a, b), **tolerance)


def test_one_blas_thread_sets_blas_to_one_thread_and_restores_it(monkeypatch):
    from gdnet.backends import numpy_threads
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(numpy_threads, "_count", 2)
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    with numpy_threads.one_blas_thread:
        with numpy_threads.one_blas_thread:  # nested: one setting
            assert all(info["num_threads"] == 1 for info in threadpool_info() if info["user_api"] == "blas")
        assert all(info["num_threads"] == 1 for info in threadpool_info() if info["user_api"] == "blas")
    assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == before


def test_every_direct_call_has_cases():
    from gdnet.backends import numpy_backend

    assert {name for name, _, _ in _numpy_cases()} == set(numpy_backend.DIRECT)


@pytest.mark.parametrize("name", ["ones", "zeros", "full", "astype"])
def test_numpy_namespace_refuses_other_devices_like_array_api_compat(name):
    from gdnet.backends import numpy_backend

    direct, _ = numpy_backend.DIRECT[name]
    args = {"astype": (np.ones(2), np.float32), "full": ((2,), 1.0)}.get(name, ((2,),))
    with pytest.raises(ValueError, match="Unsupported device"):
        direct(*args, device="cuda:0")


def test_numpy_namespace_is_array_api_compats_with_direct_calls():
    import array_api_compat.numpy as compat
    from gdnet.backends import numpy_backend

    namespace = numpy_backend.NAMESPACE
    public = [name for name in vars(compat) if not name.startswith("__")]
    assert all(hasattr(namespace, name) for name in public)
    for name in public:
        if name not in numpy_backend.DIRECT:
            assert getattr(namespace, name) is getattr(compat, name), name
    with gd.use_backend("numpy"):
        assert gd.tensor([1.0]).xp is namespace is gd.get_backend().xp


def test_only_numpy_arrays_count_as_living_on_one_device():
    numpy_backend = backends.backend_class("numpy")
    assert numpy_backend.has_one_device(np.ndarray)
    assert not numpy_backend.has_one_device(np.float32)  # a NumPy scalar beside an array is checked properly
    strict = pytest.importorskip("array_api_strict")
    kind = type(strict.asarray([1.0]))
    assert not backends.find(kind).has_one_device(kind)


# -- the registry: one entry makes a backend known everywhere -------------------------------------
class ToyArray(np.ndarray):
    """The arrays of a test-only backend: NumPy's, under a type of their own."""


class ToyBackend(backends.Backend):
    name = "toy"
    array_class = f"{__name__}:ToyArray"
    distributions = ("numpy",)
    auto_rank = -1  # ahead of every real backend, so "auto" picks it while it is registered
    test_rows = (("toy-cpu", "cpu"),)

    def __init__(self, device=None):
        import array_api_compat.numpy as xp

        super().__init__(xp, "cpu")

    @classmethod
    def auto_device(cls):
        return "cpu"

    @classmethod
    def to_host(cls, array):
        return np.array(array.view(np.ndarray), copy=True)

    def asarray(self, obj, dtype=None):
        return np.array(obj, dtype=dtype).view(ToyArray)


@pytest.fixture
def toy():
    backends.register("toy", ToyBackend)
    try:
        yield ToyBackend
    finally:
        backends.unregister("toy")


def test_a_registered_backend_is_found_by_its_arrays_and_chosen_by_auto(toy):
    assert "toy" in backends.names() and backends.backend_class("toy") is toy
    with gd.use_backend("toy") as active:
        array = active.asarray([1.0, 2.0])
    assert type(array) is ToyArray and backends.find(ToyArray) is toy and backends.owner(array) is toy
    assert gd.Tensor(array).numpy().tolist() == [1.0, 2.0]
    with gd.use_backend("numpy"):
        moved = gd.tensor(array)  # an array of another backend comes over through the host
        assert type(moved.data) is np.ndarray and moved.tolist() == [1.0, 2.0]
    assert backends.auto() == ("toy", "cpu")
    with gd.use_backend("auto") as chosen:
        assert chosen.name == "toy"
    assert "toy" in gd.available_backends()


def test_a_registered_backend_is_in_gdnet_info_the_cli_and_the_test_matrix(toy):
    import io

    import conftest

    from gdnet import cli

    out = io.StringIO()
    cli.info(out)
    line = next(line for line in out.getvalue().splitlines() if line.split()[0] == "toy")
    assert np.__version__ in line and "devices cpu" in line
    assert "toy" in cli.backend_choices()
    assert cli.make_parser().parse_args(["train", "--backend", "toy"]).backend == "toy"
    assert ("toy", "cpu") in [row.values[0] for row in conftest.matrix()]
    assert "toy-cpu" in [row.id for row in conftest.matrix()]


def test_unregistering_forgets_the_backend(toy):
    backends.unregister("toy")
    try:
        assert "toy" not in backends.names() and backends.find(ToyArray) is None
        with pytest.raises(ValueError, match="unknown backend 'toy'"):
            gd.set_backend("toy")
    finally:
        backends.register("toy", ToyBackend)


def test_an_object_of_no_backend_is_a_clear_type_error():
    with pytest.raises(TypeError, match="not an array of any gdnet backend"):
        backends.owner(object())
    assert backends.find(list) is None


def test_info_prints_each_backends_own_version_or_not_installed(monkeypatch):
    import io

    from gdnet import cli

    strict = backends.backend_class("array_api_strict")
    monkeypatch.setattr(strict, "version", classmethod(lambda cls: None))
    monkeypatch.setattr(strict, "unavailable_reason", classmethod(lambda cls, device=None: "not installed here"))
    out = io.StringIO()
    cli.info(out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[1:-1]}
    assert "not installed" in lines["array_api_strict"]
    assert lines["numpy"].split()[1] == np.__version__
    torch_version = backends.backend_class("torch").version()
    assert lines["torch"].split()[1] == (torch_version or "not")


class ScopedArray(np.ndarray):
    """The arrays of a test-only backend whose library computes on a current device (as CuPy)."""


def test_operations_and_optimizer_steps_run_under_the_device_scope_of_their_arrays(monkeypatch):
    import contextlib

    from gdnet.autograd import device_scope

    entered = []

    class ScopedBackend(ToyBackend):
        name = "scoped"
        array_class = f"{__name__}:ScopedArray"

        @classmethod
        def device_scope(cls, array):
            @contextlib.contextmanager
            def scope():
                entered.append("enter")
                yield

            return scope()

    backends.register("scoped", ScopedBackend)
    try:
        weight = gd.Tensor(np.array([1.0, -2.0]).view(ScopedArray), requires_grad=True)
        out = gd.ops.exp(weight)
        assert type(out.data) is ScopedArray and entered == ["enter"]  # the forward ran in its scope
        out.sum().backward()
        assert len(entered) == 3  # the sum's forward, then one scope around the whole backward walk
        gd.optim.SGD([weight], lr=0.1).step()
        assert len(entered) == 4
    finally:
        backends.unregister("scoped")
    with device_scope(np.zeros(2)):  # NumPy has no current device: a scope that does nothing
        entered.append("numpy")
    assert entered[-1] == "numpy" and len(entered) == 5
