"""NumPy shortcuts for the CNN layers, registered as the numpy backend's fast paths.

Each computes what its portable reference in gdnet's core computes (``gdnet.fast_paths.REFERENCES``
names them), arranged for how NumPy spends its time: an elementwise pass over a large array costs
little when its innermost loop runs along memory, and a great deal when it runs along a short
axis or mixes two memory orders. So each works on the arrays in their own memory order (the
convolution hands its outputs on as (C, H, W, N) memory seen as NCHW), gives its outputs that same
order, and brings an incoming gradient of another order to it once.

- ``max_pool2d``: windows that tile the input (stride = kernel, no padding) are the kh*kw strided
  views of one reshape; the maximum is kh*kw - 1 ``maximum`` calls over those views, and the
  backward writes each view once from a uint8 index of the winning position, instead of the
  reference's separable passes with a float mask per window position.
- ``batch_norm``: the per-channel sums run over each channel's values as they lie in memory (a
  contiguous block in (C, H, W, N) memory), where the reference reduces over the NCHW axes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .numpy_backend import FAST_PATHS


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


def _empty(shape: tuple[int, ...], dtype, axes: tuple[int, ...], zero: bool = False) -> np.ndarray:
    """A new array of ``shape`` laid out in the memory order ``axes`` (from ``_memory_axes``)."""
    moved = (np.zeros if zero else np.empty)(tuple(shape[a] for a in axes), dtype=dtype)
    return moved.transpose(tuple(np.argsort(axes)))


def _ordered_like(values: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``values`` in ``template``'s memory order: itself where it lies so, else a copy."""
    axes = _memory_axes(template)
    if axes is None:
        return values
    return _in_order(values, axes).transpose(tuple(np.argsort(axes)))


# -- max pooling over tiling windows --------------------------------------------------------------
def _window_views(x: np.ndarray, kernel: tuple[int, int], out: tuple[int, int]) -> list[np.ndarray]:
    """The kh*kw views (N, C, Ho, Wo) of x's tiles, window positions in row-major order."""
    (kh, kw), (ho, wo) = kernel, out
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    tiles = as_strided(x, (n, c, ho, kh, wo, kw), (sn, sc, kh * sh, sh, kw * sw, sw), writeable=x.flags.writeable)
    return [tiles[:, :, :, i, :, j] for i in range(kh) for j in range(kw)]


class _MaxPool2d:
    """Max pooling whose windows tile the input: stride = kernel, no padding, no dilation
    (rows and columns past the last whole window are left out, as PyTorch's floor mode does).
    The gradient goes to the first maximum in the window's row-major order and, where a window
    holds NaN, to its last NaN: PyTorch's rule and the reference's."""

    @staticmethod
    def forward(x: np.ndarray, kernel: tuple[int, int], with_index: bool):
        """-> (output (N, C, Ho, Wo) in x's memory order, what backward needs or None)."""
        out_shape = (x.shape[2] // kernel[0], x.shape[3] // kernel[1])
        views = _window_views(x, kernel, out_shape)
        if len(views) == 1:  # 1x1 windows
            return views[0].copy(), ((x.shape, _memory_axes(x), kernel, None) if with_index else None)
        best = np.maximum(views[0], views[1])
        if not with_index:
            for view in views[2:]:
                np.maximum(best, view, out=best)
            return best, None
        index = _scan(views, best, nan=False)
        # np.maximum passes a NaN on, so the output shows whether any window holds one; then a
        # NaN candidate wins too (the reference's rule), which takes one more scan
        if np.isnan(np.minimum.reduce(best, axis=None)):
            index = _scan(views, np.maximum(views[0], views[1]), nan=True)
        return best, (x.shape, _memory_axes(x), kernel, index)

    @staticmethod
    def backward(saved, g: np.ndarray) -> np.ndarray:
        shape, axes, kernel, index = saved
        covered = shape[2] % kernel[0] == 0 and shape[3] % kernel[1] == 0
        grad = _empty(shape, g.dtype, axes or tuple(range(4)), zero=not covered)
        views = _window_views(grad, kernel, g.shape[2:])
        if index is None:
            views[0][...] = g
            return grad
        g = _ordered_like(g, index)
        for k, view in enumerate(views):
            np.multiply(g, index == k, out=view)
        return grad


def _scan(views: list[np.ndarray], best: np.ndarray, nan: bool) -> np.ndarray:
    """uint8 index of each window's winner: the last position that beat every earlier one
    (strictly greater, or with ``nan`` a NaN). ``best`` holds the maximum of the first two
    positions and ends as the maximum of all."""
    index = np.greater(views[1], views[0])
    if nan:
        index |= np.isnan(views[1])
    index = index.view(np.uint8)
    for k, view in enumerate(views[2:], start=2):
        beat = np.greater(view, best)
        if nan:
            beat |= np.isnan(view)
        np.maximum(best, view, out=best)
        code = beat.view(np.uint8)
        code *= k  # 0 or k: later winners have larger codes, so the maximum keeps the last
        np.maximum(index, code, out=index)
    return index


FAST_PATHS["max_pool2d"] = _MaxPool2d


# -- batch normalisation --------------------------------------------------------------------------
class _BatchNorm:
    """Batch statistics over every axis but the channel axis 1, in the input's memory order: x
    seen as (A, C, B) with A the axes before the channel in memory and B those after (A = 1 for
    channel-major memory, B = H*W for NCHW), so each sum reads whole contiguous runs."""

    @staticmethod
    def forward(x: np.ndarray, weight, bias, eps: float):
        """-> (y in x's memory order, mean (C,), biased variance (C,), what backward needs)."""
        axes = _memory_axes(x)
        if axes is None:
            axes = tuple(range(x.ndim))
            x = np.ascontiguousarray(x)
        moved = x.transpose(axes)
        at = axes.index(1)
        channels = x.shape[1]
        x3 = moved.reshape(math.prod(moved.shape[:at]), channels, -1)
        count = float(x3.shape[0] * x3.shape[2])
        mean = np.add.reduce(x3, axis=(0, 2)) / count
        centred = x3 - mean[:, None]
        var = np.add.reduce(np.vecdot(centred, centred), axis=0) / count
        inv_std = 1.0 / np.sqrt(var + eps)
        scale = inv_std if weight is None else inv_std * weight
        y = centred * scale[:, None]
        if bias is not None:
            y += bias[:, None]
        inverse = tuple(np.argsort(axes))
        return y.reshape(moved.shape).transpose(inverse), mean, var, (centred, inv_std, scale, axes, moved.shape)

    @staticmethod
    def backward(saved, g: np.ndarray, wants: tuple[bool, bool, bool]):
        """-> (grad of x, of weight, of bias), each None where not wanted."""
        centred, inv_std, scale, axes, shape = saved
        g3 = _in_order(g, axes).reshape(centred.shape)
        count = float(centred.shape[0] * centred.shape[2])
        g_sum = np.add.reduce(g3, axis=(0, 2))
        g_x_hat_sum = np.add.reduce(np.vecdot(g3, centred), axis=0) * inv_std
        grad_x = None
        if wants[0]:
            # dx = (g - mean(g) - x_hat * mean(g * x_hat)) * scale, in one new array
            grad_x = centred * (inv_std * g_x_hat_sum * (-1.0 / count))[:, None]
            grad_x += g3
            grad_x -= (g_sum / count)[:, None]
            grad_x *= scale[:, None]
            grad_x = grad_x.reshape(shape).transpose(tuple(np.argsort(axes)))
        return grad_x, (g_x_hat_sum if wants[1] else None), (g_sum if wants[2] else None)


FAST_PATHS["batch_norm"] = _BatchNorm
