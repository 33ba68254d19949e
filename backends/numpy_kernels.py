"""NumPy shortcuts for the CNN layers, registered as the numpy backend's fast paths.

Each computes what its portable reference in gdnet's core computes (``gdnet.fast_paths.REFERENCES``
names them), arranged for how NumPy spends its time:

- Memory order. An elementwise pass over a large array costs little when its innermost loop
  runs along memory, and several times more when it runs along a short axis or mixes two memory
  orders. So each works on the arrays in their own memory order (the convolution hands its output
  on as (C, H, W, N) memory seen as NCHW), gives its outputs that same order, and brings an
  incoming gradient of another order to it once.
- Threads. NumPy runs each elementwise pass on one core; only its matrix products use more
  (through its BLAS). These split their passes by channel (or, for ReLU, by memory) over
  ``thread_count()`` threads, as PyTorch's CPU kernels split theirs; NumPy releases the GIL inside
  each pass, so the parts run at once. The convolution and BatchNorm call BLAS (its products, and
  ``vecdot``'s dot products) on one thread and split the products themselves (``numpy_threads``
  says why).

What each saves over its reference:

- ``conv2d``: the columns are written straight from the input (no padded copy first), with a row
  of ones that puts the bias into the forward's matrix product and the bias gradient into the
  weight gradient's; the backward adds the column gradients straight into an input-sized array.
- ``max_pool2d``: windows that tile the input are the kh*kw strided views of one reshape; the
  maximum is kh*kw - 1 ``maximum`` calls over them and the backward writes each view once from a
  uint8 index of the winning position, instead of separable passes with a float mask per position.
- ``batch_norm``: the per-channel sums read each channel's values where they lie (a contiguous
  block in (C, H, W, N) memory), where the reference reduces over the NCHW axes.
- ``relu`` and ``relu_backward``: the same one and three passes, split over the threads.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .numpy_threads import MIN_PARALLEL, matmul, one_blas_thread, parallel, thread_count

# the numpy backend's ``kernels``: loaded into its fast paths when its first array is met
FAST_PATHS: dict = {}


def _one_blas_thread(method):
    """``method`` with BLAS on one thread: the numpy_threads module says why."""

    @functools.wraps(method)
    def scoped(*args, **kwargs):
        with one_blas_thread:
            return method(*args, **kwargs)

    return staticmethod(scoped)

# -- memory order ---------------------------------------------------------------------------------
def _memory_axes(x: np.ndarray) -> tuple[int, ...] | None:
    """The axes of x from the slowest-varying in memory to the fastest, where x is a transpose of
    a C-contiguous array (else None)."""
    axes = tuple(sorted(range(x.ndim), key=lambda a: (-x.strides[a], a)))
    return axes if x.transpose(axes).flags.c_contiguous else None


def _in_order(array: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``array.transpose(axes)``, C-contiguous: a view where the array already lies that way."""
    moved = array.transpose(axes)
    return moved if moved.flags.c_contiguous else np.ascontiguousarray(moved)


def _empty(shape: tuple[int, ...], dtype, axes: tuple[int, ...] | None, zero: bool = False) -> np.ndarray:
    """A new array of ``shape`` laid out in the memory order ``axes`` (None: C order)."""
    axes = axes or tuple(range(len(shape)))
    moved = (np.zeros if zero else np.empty)(tuple(shape[a] for a in axes), dtype=dtype)
    return moved.transpose(tuple(np.argsort(axes)))


def _ordered_like(values: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``values`` in ``template``'s memory order: itself where it lies so, else a copy."""
    axes = _memory_axes(template)
    if axes is None:
        return values
    return _in_order(values, axes).transpose(tuple(np.argsort(axes)))


def _flat(array: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The values of an array that lies in memory order ``axes``, as a 1-D view in that order."""
    return array.transpose(axes).reshape(-1)


# -- convolution ----------------------------------------------------------------------------------
def _valid(axis, i: int) -> tuple[slice, slice] | None:
    """Kernel offset i along one axis (a gdnet.nn.conv._Axis): the input positions its windows
    read, and the output positions whose windows read them (the rest read padding); None where
    every window of that offset reads padding."""
    window = axis.slices[i]
    start, step = window.start - axis.before, window.step
    first = max(0, -(start // step)) if start < 0 else 0
    last = min(axis.out - 1, (axis.size - 1 - start) // step)
    if first > last:
        return None
    return slice(start + step * first, start + step * last + 1, step), slice(first, last + 1)


class _Shares:
    """How a convolution's passes share out: by channel (the leading axis) where there are at
    least as many channels as threads, else by sample (the trailing axis); ``part(lo, hi)``
    indexes one share of an array in (C, ..., N) order."""

    def __init__(self, channels: int, samples: int):
        self.by_channel = channels >= thread_count()
        self.size = channels if self.by_channel else samples

    def __call__(self, lo: int, hi: int) -> tuple:
        return (slice(lo, hi), Ellipsis) if self.by_channel else (Ellipsis, slice(lo, hi))


class _Conv2d:
    """Convolution as gdnet.nn.conv.Conv2dFunction computes it: columns (C*kh*kw, Ho*Wo*N) in
    (C, H, W, N) order and one matrix product each way, the bias as one more column row."""

    @_one_blas_thread
    def forward(x: np.ndarray, weight: np.ndarray, bias, geometry):
        """-> (output (N, O, Ho, Wo) seen from (O, Ho, Wo, N) memory, what backward needs)."""
        n, c = x.shape[:2]
        o, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
        (ho, wo), rows, cols = geometry.out, geometry.rows, geometry.cols
        source = x.transpose(1, 2, 3, 0)  # (C, H, W, N)
        if not source.flags.c_contiguous and kh * kw > 1:
            source = np.ascontiguousarray(source)  # one transposing copy, not one per offset
        k = c * kh * kw
        columns = np.empty((k + (bias is not None), ho * wo * n), dtype=x.dtype)
        planes = columns[:k].reshape(c, kh, kw, ho, wo, n)
        offsets = [(i, j, _valid(rows, i), _valid(cols, j)) for i in range(kh) for j in range(kw)]
        part = _Shares(c, n)

        def fill(lo: int, hi: int) -> None:
            mine, read = planes[part(lo, hi)], source[part(lo, hi)]
            for i, j, r, s in offsets:
                plane = mine[:, i, j]
                if r is None or s is None:
                    plane[...] = 0
                    continue
                (r_in, r_out), (s_in, s_out) = r, s
                plane[:, : r_out.start] = 0
                plane[:, r_out.stop :] = 0
                plane[:, r_out, : s_out.start] = 0
                plane[:, r_out, s_out.stop :] = 0
                plane[:, r_out, s_out] = read[:, r_in, s_in]

        parallel(fill, part.size, columns.size)
        matrix = weight.reshape(o, k)
        if bias is not None:
            columns[k] = 1
            matrix = np.concatenate([matrix, bias[:, None]], axis=1)
        y = matmul(matrix, columns).reshape(o, ho, wo, n)
        return y.transpose(3, 0, 1, 2), (columns, matrix, x.shape, weight.shape, geometry, offsets)

    @_one_blas_thread
    def backward(saved, g: np.ndarray, needs: tuple[bool, bool, bool]):
        """-> (grad of x, of weight, of bias), each None where not wanted."""
        columns, matrix, x_shape, w_shape, geometry, offsets = saved
        n, c, h, w = x_shape
        o, k = w_shape[0], c * w_shape[2] * w_shape[3]
        g2 = _in_order(g, (1, 2, 3, 0)).reshape(o, -1)  # (O, Ho*Wo*N)
        grad_x = grad_w = grad_b = None
        if needs[1] or needs[2]:
            both = matmul(g2, columns.T)  # (O, k + 1): the last column is the bias gradient
            grad_w = np.ascontiguousarray(both[:, :k]).reshape(w_shape) if needs[1] else None
            grad_b = np.ascontiguousarray(both[:, k]) if needs[2] and columns.shape[0] > k else None
        if needs[0]:
            pieces = matmul(matrix[:, :k].T, g2).reshape((c, w_shape[2], w_shape[3]) + geometry.out + (n,))
            grad = np.empty((c, h, w, n), dtype=g.dtype)
            part = _Shares(c, n)

            def fold(lo: int, hi: int) -> None:
                mine, read = grad[part(lo, hi)], pieces[part(lo, hi)]
                mine[...] = 0
                for i, j, r, s in offsets:
                    if r is not None and s is not None:
                        (r_in, r_out), (s_in, s_out) = r, s
                        mine[:, r_in, s_in] += read[:, i, j, r_out, s_out]

            parallel(fold, part.size, pieces.size)
            grad_x = grad.transpose(3, 0, 1, 2)
        return grad_x, grad_w, grad_b


FAST_PATHS["conv2d"] = _Conv2d


# -- max pooling over tiling windows --------------------------------------------------------------
def _window_views(x: np.ndarray, kernel: tuple[int, int], out: tuple[int, int]) -> list[np.ndarray]:
    """The kh*kw views (N, C, Ho, Wo) of x's tiles, window positions in row-major order."""
    (kh, kw), (ho, wo) = kernel, out
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    tiles = as_strided(x, (n, c, ho, kh, wo, kw), (sn, sc, kh * sh, sh, kw * sw, sw), writeable=x.flags.writeable)
    return [tiles[:, :, :, i, :, j] for i in range(kh) for j in range(kw)]


def _scan(views: list[np.ndarray], best: np.ndarray, index: np.ndarray, nan: bool) -> None:
    """Into ``best`` the windows' maximum, into ``index`` (uint8) each window's winner: the last
    position that beat every earlier one (strictly greater, or with ``nan`` a NaN)."""
    beat = np.greater(views[1], views[0], out=index.view(bool))
    if nan:
        beat |= np.isnan(views[1])
    np.maximum(views[0], views[1], out=best)
    for k, view in enumerate(views[2:], start=2):
        beat = np.greater(view, best)
        if nan:
            beat |= np.isnan(view)
        np.maximum(best, view, out=best)
        code = beat.view(np.uint8)
        code *= k  # 0 or k: later winners have larger codes, so the maximum keeps the last
        np.maximum(index, code, out=index)


class _MaxPool2d:
    """Max pooling whose windows tile the input: stride = kernel, no padding, no dilation
    (rows and columns past the last whole window are left out, as PyTorch's floor mode does).
    The gradient goes to the first maximum in the window's row-major order and, where a window
    holds NaN, to its last NaN: PyTorch's rule and the reference's."""

    @staticmethod
    def forward(x: np.ndarray, kernel: tuple[int, int], with_index: bool):
        """-> (output (N, C, Ho, Wo) in x's memory order, what backward needs or None)."""
        n, c, h, w = x.shape
        out_shape = (h // kernel[0], w // kernel[1])
        views = _window_views(x, kernel, out_shape)
        axes = _memory_axes(x)
        if len(views) == 1:  # 1x1 windows
            return views[0].copy(), ((x.shape, axes, kernel, None) if with_index else None)
        best = _empty((n, c) + out_shape, x.dtype, axes)
        index = _empty((n, c) + out_shape, np.uint8, axes) if with_index else None

        def pool(lo: int, hi: int, nan: bool = False) -> None:
            part = [view[:, lo:hi] for view in views]
            if index is not None:
                _scan(part, best[:, lo:hi], index[:, lo:hi], nan)
                return
            np.maximum(part[0], part[1], out=best[:, lo:hi])
            for view in part[2:]:
                np.maximum(best[:, lo:hi], view, out=best[:, lo:hi])

        parallel(pool, c, x.size)
        if index is None:
            return best, None
        # np.maximum passes a NaN on, so the output shows whether any window holds one; then a
        # NaN candidate wins too (the reference's rule), which takes another scan
        if np.isnan(np.minimum.reduce(best, axis=None)):
            parallel(lambda lo, hi: pool(lo, hi, nan=True), c, x.size)
        return best, (x.shape, axes, kernel, index)

    @staticmethod
    def backward(saved, g: np.ndarray) -> np.ndarray:
        shape, axes, kernel, index = saved
        covered = shape[2] % kernel[0] == 0 and shape[3] % kernel[1] == 0
        grad = _empty(shape, g.dtype, axes, zero=not covered)
        views = _window_views(grad, kernel, g.shape[2:])
        if index is None:
            views[0][...] = g
            return grad
        g = _ordered_like(g, index)

        def unpool(lo: int, hi: int) -> None:
            part, winners = g[:, lo:hi], index[:, lo:hi]
            for k, view in enumerate(views):
                np.multiply(part, winners == k, out=view[:, lo:hi])

        parallel(unpool, shape[1], grad.size)
        return grad


FAST_PATHS["max_pool2d"] = _MaxPool2d


# -- batch normalisation --------------------------------------------------------------------------
def _by_channel(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """x (N, C, ...) as an (A, C, B) view in its memory order (A: the axes before the channel in
    memory, B: those after), and that order; a C-ordered copy where x is no transpose of a
    contiguous array."""
    axes = _memory_axes(x)
    if axes is None:
        axes, x = tuple(range(x.ndim)), np.ascontiguousarray(x)
    moved = x.transpose(axes)
    at = axes.index(1)
    return moved.reshape(math.prod(moved.shape[:at]), x.shape[1], -1), axes


def _unmoved(array3: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """The inverse of ``_by_channel``: an (A, C, B) array back to ``shape`` (a view)."""
    return array3.reshape(tuple(shape[a] for a in axes)).transpose(tuple(np.argsort(axes)))


class _BatchNorm:
    """Batch statistics over every axis but the channel axis 1, channel by channel in the input's
    memory order; the same arithmetic as the reference."""

    @_one_blas_thread
    def forward(x: np.ndarray, weight, bias, eps: float):
        """-> (y in x's memory order, mean (C,), biased variance (C,), what backward needs)."""
        x3, axes = _by_channel(x)
        channels = x3.shape[1]
        count = float(x3.shape[0] * x3.shape[2])
        centred, y = np.empty_like(x3), np.empty_like(x3)
        mean, var, inv_std = (np.empty(channels, dtype=x.dtype) for _ in range(3))
        scale = inv_std if weight is None else np.empty(channels, dtype=x.dtype)

        def normalise(lo: int, hi: int) -> None:
            part, c = x3[:, lo:hi], centred[:, lo:hi]
            np.divide(np.add.reduce(part, axis=(0, 2)), count, out=mean[lo:hi])
            np.subtract(part, mean[lo:hi, None], out=c)
            np.divide(np.add.reduce(np.vecdot(c, c), axis=0), count, out=var[lo:hi])
            np.divide(1.0, np.sqrt(var[lo:hi] + eps), out=inv_std[lo:hi])
            if weight is not None:
                np.multiply(inv_std[lo:hi], weight[lo:hi], out=scale[lo:hi])
            out = np.multiply(c, scale[lo:hi, None], out=y[:, lo:hi])
            if bias is not None:
                out += bias[lo:hi, None]

        parallel(normalise, channels, x3.size)
        return _unmoved(y, x.shape, axes), mean, var, (centred, inv_std, scale, axes, x.shape)

    @_one_blas_thread
    def backward(saved, g: np.ndarray, wants: tuple[bool, bool, bool]):
        """-> (grad of x, of weight, of bias), each None where not wanted."""
        centred, inv_std, scale, axes, shape = saved
        g3 = _in_order(g, axes).reshape(centred.shape)
        channels = centred.shape[1]
        count = float(centred.shape[0] * centred.shape[2])
        g_sum, g_x_hat_sum = np.empty(channels, dtype=g.dtype), np.empty(channels, dtype=g.dtype)
        grad = np.empty_like(centred) if wants[0] else None

        def differentiate(lo: int, hi: int) -> None:
            part, c = g3[:, lo:hi], centred[:, lo:hi]
            g_sum[lo:hi] = np.add.reduce(part, axis=(0, 2))
            np.multiply(np.add.reduce(np.vecdot(part, c), axis=0), inv_std[lo:hi], out=g_x_hat_sum[lo:hi])
            if grad is None:
                return
            # dx = (g - mean(g) - x_hat * mean(g * x_hat)) * scale
            out = np.multiply(c, (inv_std[lo:hi] * g_x_hat_sum[lo:hi] * (-1.0 / count))[:, None], out=grad[:, lo:hi])
            out += part
            out -= (g_sum[lo:hi] / count)[:, None]
            out *= scale[lo:hi, None]

        parallel(differentiate, channels, centred.size)
        grad_x = _unmoved(grad, shape, axes) if grad is not None else None
        return grad_x, (g_x_hat_sum if wants[1] else None), (g_sum if wants[2] else None)


FAST_PATHS["batch_norm"] = _BatchNorm


# -- ReLU -----------------------------------------------------------------------------------------
def relu(a: np.ndarray) -> np.ndarray:
    """max(a, 0), in a's memory order, split over the threads."""
    if a.size < MIN_PARALLEL:  # too small to share out (the size first: it is the cheap test)
        return np.maximum(a, 0.0)
    axes = _memory_axes(a)
    if axes is None:
        return np.maximum(a, 0.0)
    out = _empty(a.shape, a.dtype, axes)
    src, dst = _flat(a, axes), _flat(out, axes)
    parallel(lambda lo, hi: np.maximum(src[lo:hi], 0.0, out=dst[lo:hi]), src.size, src.size)
    return out


def relu_backward(grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """grad where out > 0, else 0 (the reference's product with a 0/1 mask), split over the threads."""
    if out.size < MIN_PARALLEL:
        return grad * (out > 0).astype(grad.dtype)
    axes = _memory_axes(out)
    if axes is None:
        return grad * (out > 0).astype(grad.dtype)
    result = _empty(out.shape, grad.dtype, axes)
    g, o, r = _flat(_ordered_like(grad, out), axes), _flat(out, axes), _flat(result, axes)

    def part(lo: int, hi: int) -> None:
        np.multiply(g[lo:hi], (o[lo:hi] > 0).astype(r.dtype), out=r[lo:hi])

    parallel(part, o.size, o.size)
    return result


FAST_PATHS["relu"] = relu
FAST_PATHS["relu_backward"] = relu_backward
