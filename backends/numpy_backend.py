"""NumPy on the CPU, through array-api-compat's NumPy namespace."""

from __future__ import annotations

import operator
import types

import array_api_compat.numpy as xp_numpy
import numpy as np

from . import host, numpy_threads
from ._base import Backend, register_fast_path

FAST_PATHS: dict = {}

# -- the namespace ----------------------------------------------------------------------------
# array-api-compat's NumPy namespace, with the functions a training step calls most often bound
# straight to NumPy's ufuncs and ndarray methods. NumPy's function-level spellings (np.sum,
# np.reshape, np.take) and array-api-compat's wrappers are Python code that checks and forwards;
# on MNIST-sized batches that costs more than the arithmetic. Each replacement gives the same
# result as the function it replaces (tests/test_backend.py compares them), and hands anything
# it does not cover (a device argument, a non-ndarray) to that function.
_ndarray = np.ndarray
_add_reduce = np.add.reduce


def _on_cpu(device) -> bool:
    return device is None or (isinstance(device, str) and device == "cpu")


def _sum(x, /, *, axis=None, dtype=None, keepdims=False):
    if type(x) is _ndarray:
        return _add_reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)  # what np.sum calls
    return xp_numpy.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _mean(x, /, *, axis=None, keepdims=False):
    if type(x) is _ndarray and x.dtype.kind == "f" and x.dtype.itemsize >= 4 and x.size:
        # np.mean's own steps for float32/float64 (the sum, then a division by the count as
        # an intp, so the same bits), without its Python-level argument handling
        total = _add_reduce(x, axis=axis, keepdims=keepdims)
        count = np.intp(x.size // total.size)
        if type(total) is _ndarray:
            return np.true_divide(total, count, out=total, casting="unsafe")
        return total.dtype.type(total / count)
    return xp_numpy.mean(x, axis=axis, keepdims=keepdims)


def _reshape(x, /, shape, *, copy=None):
    if copy is None and type(x) is _ndarray:
        return x.reshape(shape)
    return xp_numpy.reshape(x, shape, copy=copy)


def _take(x, indices, /, *, axis=None):
    if type(x) is _ndarray:
        return x.take(indices, axis=axis)
    return xp_numpy.take(x, indices, axis=axis)


def _astype(x, dtype, /, *, copy=True, device=None):
    if device is None and type(x) is _ndarray:
        return x.astype(dtype, copy=copy)
    return xp_numpy.astype(x, dtype, copy=copy, device=device)


def _full(shape, fill_value, *, dtype=None, device=None):
    if not _on_cpu(device) or dtype is None:  # np.full infers the dtype from the value
        return xp_numpy.full(shape, fill_value, dtype=dtype, device=device)
    array = np.empty(shape, dtype=dtype)  # what np.full does, without its Python wrapper
    array.fill(fill_value)
    return array


def _ones(shape, *, dtype=None, device=None):
    if not _on_cpu(device):
        return xp_numpy.ones(shape, dtype=dtype, device=device)
    array = np.empty(shape, dtype=dtype)  # what np.ones does, without its Python wrapper
    array.fill(1)
    return array


def _zeros(shape, *, dtype=None, device=None):
    return np.zeros(shape, dtype=dtype) if _on_cpu(device) else xp_numpy.zeros(shape, dtype=dtype, device=device)


# name -> (replacement, what it replaces); the replaced functions stay reachable for the tests
DIRECT = {
    # the ndarray attribute, read in C (NumPy's matrix_transpose is a Python function around it)
    "matrix_transpose": (operator.attrgetter("mT"), xp_numpy.matrix_transpose),
    "sum": (_sum, xp_numpy.sum),
    "mean": (_mean, xp_numpy.mean),
    "reshape": (_reshape, xp_numpy.reshape),
    "take": (_take, xp_numpy.take),
    "astype": (_astype, xp_numpy.astype),
    # array-api-compat's only forwards to np.matmul; large products split over the backend's threads
    "matmul": (numpy_threads.matmul, xp_numpy.matmul),
    "ones": (_ones, xp_numpy.ones),
    "zeros": (_zeros, xp_numpy.zeros),
    "full": (_full, xp_numpy.full),
}


def _namespace() -> types.ModuleType:
    namespace = types.ModuleType(
        "gdnet.backends.numpy_namespace", "array-api-compat's NumPy namespace with direct calls for hot functions"
    )
    for name, value in vars(xp_numpy).items():
        if not name.startswith("__"):
            setattr(namespace, name, value)
    for name, (direct, _) in DIRECT.items():
        setattr(namespace, name, direct)
    return namespace


NAMESPACE = _namespace()


class NumpyBackend(Backend):
    name = "numpy"
    distributions = ("numpy",)
    auto_rank = 100  # the fallback: always there
    test_rows = (("numpy", None),)
    sync_is_free = True
    fast_paths = FAST_PATHS
    kernels = "numpy_kernels"  # the CNN layers' fast paths

    def __init__(self, device: str | None = None):
        if device not in (None, "cpu"):
            raise ValueError(f"numpy backend has one device, 'cpu'; got {device!r}")
        super().__init__(NAMESPACE, "cpu")

    @classmethod
    def auto_device(cls):
        return "cpu"

    @classmethod
    def owns(cls, array_type):
        # exact types: a subclass of ndarray may belong to another backend
        return array_type is _ndarray or issubclass(array_type, np.generic)

    @classmethod
    def namespace(cls, array):
        return NAMESPACE

    @classmethod
    def has_one_device(cls, array_type):
        return array_type is _ndarray

    @classmethod
    def to_host(cls, array) -> np.ndarray:
        return np.array(array, copy=True)

    @classmethod
    def value_range(cls, array):
        return host.value_range(array)

    def asarray(self, obj, dtype=None):
        return np.asarray(obj, dtype=dtype)

    def communicator(self, world, engine):
        if engine == "mpi":  # NumPy arrays are host buffers already: MPI reduces them in place
            from .mpi_comm import MPICommunicator

            return MPICommunicator(world, np.asarray, np.asarray, in_place=True)
        return super().communicator(world, engine)


_ROWS: dict[int, np.ndarray] = {}


def _rows(n: int) -> np.ndarray:
    """arange(n), made once per batch size (it only ever indexes, so sharing it is safe)."""
    rows = _ROWS.get(n)
    if rows is None:
        rows = _ROWS[n] = np.arange(n)
        rows.flags.writeable = False
    return rows


class _SoftmaxCrossEntropy:
    """Fused softmax cross-entropy against class indices, in place where NumPy allows: the
    same numbers as gdnet.ops.SoftmaxCrossEntropy's portable code (a test asserts it), in
    fewer passes (integer-array assignment instead of a one-hot matrix in the backward). The
    reductions call the ufuncs' own reduce: the ndarray methods add a Python-level wrapper."""

    @staticmethod
    def forward(logits: np.ndarray, labels: np.ndarray, reduction: str):
        """-> (loss, softmax probabilities); the caller owns the probabilities."""
        shifted = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
        rows = _rows(logits.shape[0])
        picked = shifted[rows, labels]
        probs = np.exp(shifted, out=shifted)
        total = np.add.reduce(probs, axis=1, keepdims=True)
        per_sample = np.log(total[:, 0])
        per_sample -= picked
        probs /= total
        if reduction == "none":
            return per_sample, probs
        loss = np.add.reduce(per_sample)
        return (loss / float(logits.shape[0]) if reduction == "mean" else loss), probs

    @staticmethod
    def backward(probs: np.ndarray, labels: np.ndarray, grad: np.ndarray, reduction: str) -> np.ndarray:
        """d loss / d logits, computed in ``probs`` (consumed)."""
        n = probs.shape[0]
        probs[_rows(n), labels] -= 1.0
        if reduction == "none":
            probs *= grad[:, None]
        else:
            probs *= grad / float(n) if reduction == "mean" else grad
        return probs


@register_fast_path(FAST_PATHS, "sgd_momentum")
def _sgd_momentum(params, grads, buffers, lr, momentum, dampening, decay, nesterov) -> None:
    """In place: gdnet.optim.SGD's reference chain for the steps after the first, the same
    operations in the same order (so the same bits), in one call instead of one per link."""
    for param, grad, buffer in zip(params, grads, buffers):
        if decay != 0.0:
            grad = grad + decay * param
        buffer *= momentum
        buffer += grad if dampening == 0.0 else (1.0 - dampening) * grad
        update = grad + momentum * buffer if nesterov else buffer
        param += update * -lr


FAST_PATHS["softmax_cross_entropy"] = _SoftmaxCrossEntropy

BACKEND = NumpyBackend
