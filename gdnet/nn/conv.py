"""Convolution and pooling over NCHW (and NCL) tensors: fused primitives, functions, layers.

Portable on every array-API library: a kh x kw kernel is kh*kw strided slices of the padded
input. Convolution stacks the slices into one column matrix (im2col) and multiplies once;
the backward adds the column gradients back slice by slice into a zero buffer (or, where the
windows tile the input, stacks them), so no scatter is needed (the standard has none).
Pooling is separable: the max (or sum) over each window's columns, then over its rows.

Layout: convolution works on x permuted to (C, H, W, N). The columns are then
(C*kh*kw, Ho*Wo*N), so the forward and both weight and input gradients are each one large GEMM
with PyTorch's weight (out, in, kh, kw) read as an (out, in*kh*kw) matrix, and the output
(out, Ho, Wo, N) is handed on as an NCHW view without a copy. With the batch innermost, every
window slice and every add of the backward's fold moves runs of Wo*N contiguous values; with
(C, N, H, W), the layout before, they were runs of Wo. On NumPy, for the second convolution of
benchmarks/cnn.py (32 -> 64 channels, 14x14, batch 128), building the columns takes 1.0 ms
instead of 2.2 and the fold 1.9 ms instead of 14 (one thread, best of 15); the GEMMs, about 9 ms
each, are the same. The next layers keep that memory order: elementwise results follow their
input's, and the numpy backend's BatchNorm and max-pool fast paths work in it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .. import ops
from ..autograd import Array, Function, Tensor, as_tensor, check_dtype_matches, is_grad_enabled
from ..fast_paths import lookup
from .init import initialise
from .module import Module, check_sizes, new_parameter

IntPair = int | Sequence[int]
# (N, C, H, W) <-> (C, H, W, N): the axis orders of the convolution's layout
_CHWN, _NCHW = (1, 2, 3, 0), (3, 0, 1, 2)


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints >= {minimum}; got {value!r}")
    return pair  # type: ignore[return-value]


class _Axis:
    """Sliding windows along one axis: where each kernel offset's strided slice lies in the
    padded axis, and how to add slices of that shape back (the VJP of taking them)."""

    def __init__(self, size: int, kernel: int, stride: int, dilation: int, before: int, after: int):
        self.size, self.kernel, self.before = size, kernel, before
        self.padded = size + before + after
        self.extent = dilation * (kernel - 1) + 1
        self.out = (self.padded - self.extent) // stride + 1
        self.slices = [slice(i * dilation, i * dilation + (self.out - 1) * stride + 1, stride) for i in range(kernel)]
        # windows side by side covering the padded axis exactly: the slices interleave, so
        # stacking pieces after the window axis and merging the two rebuilds the axis
        self.tiles = stride == kernel and dilation == 1 and self.out * kernel == self.padded
        # windows that never share a position can be written back without adding
        self.overlap = stride < self.extent

    def take(self, x: Array, axis: int) -> list[Array]:
        """The kernel's slices of x along ``axis``."""
        return [x[(slice(None),) * axis + (window, Ellipsis)] for window in self.slices]

    def fold(self, xp: Any, pieces: Sequence[Array], axis: int) -> Array:
        """Pieces shaped like ``take``'s slices, added back into one array of the padded length."""
        first = pieces[0]
        shape = tuple(first.shape[:axis]) + (self.padded,) + tuple(first.shape[axis + 1 :])
        if self.tiles:  # contiguous writes instead of strided ones, and no zero fill
            return xp.reshape(xp.stack(pieces, axis=axis + 1), shape)
        buffer = xp.zeros(shape, dtype=first.dtype, device=first.device)
        for window, piece in zip(self.slices, pieces):
            key = (slice(None),) * axis + (window, Ellipsis)
            if self.overlap:
                buffer[key] += piece
            else:
                buffer[key] = piece
        return buffer


class _Windows:
    """kh x kw windows over the last two axes (H, W) of a 4-D array, padded by
    ``pads`` = (top, bottom, left, right). Kernel offsets run in row-major order, the order of
    PyTorch's weight (out, in, kh, kw) and of the window scan of its max pooling."""

    def __init__(self, size, kernel, stride, dilation, pads, name: str, shape):
        top, bottom, left, right = pads
        self.rows = _Axis(size[0], kernel[0], stride[0], dilation[0], top, bottom)
        self.cols = _Axis(size[1], kernel[1], stride[1], dilation[1], left, right)
        self.pads = pads
        # windows side by side from the top left corner, no gaps (what fast paths may take)
        self.tiled = tuple(stride) == tuple(kernel) and tuple(dilation) == (1, 1) and not any(pads)
        if self.rows.extent > self.rows.padded or self.cols.extent > self.cols.padded:
            raise ValueError(
                f"{name}: kernel {kernel[0]}x{kernel[1]} (dilated extent {self.rows.extent}x{self.cols.extent}) "
                f"is larger than the padded input {self.rows.padded}x{self.cols.padded} (input shape {shape}, "
                f"padding {pads})"
            )
        self.out = (self.rows.out, self.cols.out)

    def pad(self, xp: Any, x: Array, fill: float, axis: int = 2) -> Array:
        """x with H and W on axes ``axis`` and ``axis + 1`` inside a buffer of ``fill`` (padded
        sizes Hp, Wp on those axes); x itself without padding."""
        if not any(self.pads):
            return x
        rows, cols = self.rows, self.cols
        shape = tuple(x.shape[:axis]) + (rows.padded, cols.padded) + tuple(x.shape[axis + 2 :])
        buffer = xp.full(shape, fill, dtype=x.dtype, device=x.device)
        buffer[self._inside(axis)] = x
        return buffer

    def _inside(self, axis: int) -> tuple:
        rows, cols = self.rows, self.cols
        return (slice(None),) * axis + (
            slice(rows.before, rows.before + rows.size), slice(cols.before, cols.before + cols.size), Ellipsis)

    def crop(self, x: Array, axis: int = 2) -> Array:
        """The VJP of ``pad``: the (H, W) inside of a padded array."""
        return x[self._inside(axis)] if any(self.pads) else x

    def windows(self, x: Array, axis: int = 2) -> list[Array]:
        """The kh*kw strided slices of a padded array over axes ``axis`` and ``axis + 1``, each
        (..., Ho, Wo, ...)."""
        lead = (slice(None),) * axis
        return [x[lead + (r, c, Ellipsis)] for r in self.rows.slices for c in self.cols.slices]

    def fold(self, xp: Any, pieces: Sequence[Array], axis: int = 2) -> Array:
        """The VJP of ``windows`` (then of ``pad``): kh*kw pieces (..., Ho, Wo, ...) -> (..., H, W, ...).

        Rows first: adding row slices moves whole (Ho, Wo) planes, column slices only Wo-long
        runs, so the kh*kw adds go where they are cheap and only kw go column by column."""
        kw = self.cols.kernel
        columns = [self.rows.fold(xp, pieces[j::kw], axis) for j in range(kw)]
        return self.crop(self.cols.fold(xp, columns, axis + 1), axis)


# Pooling is separable: a window's max (or sum) is the max over its rows of the max over each
# row's columns. Two passes of kernel-1 elementwise ops on shrinking arrays read far less than
# kh*kw slices of the input: for 2x2 max pooling of (128, 32, 28, 28) on NumPy, 8 ms forward and
# 9 ms backward, against 21 and 17 ms for four 2-D slices with an argmax index, and 90 ms for a
# max over the two window axes of a (N, C, Ho, 2, Wo, 2) reshape (short-axis reductions are slow).
def _max_along(xp: Any, x: Array, axis: int, geo: _Axis) -> tuple[Array, list[Array]]:
    """Max over the windows of one axis; ``masks[i - 1]`` marks where slice i beat slices < i.
    A NaN beats everything (the maximum is NaN), as in PyTorch's max pooling."""
    slices = geo.take(x, axis)
    best, masks = slices[0], []
    for candidate in slices[1:]:
        # strictly greater: a tie stays with the earlier position
        masks.append((candidate > best) | xp.isnan(candidate))
        best = xp.maximum(best, candidate)
    return best, masks


def _unmax_along(xp: Any, g: Array, masks: list[Array], axis: int, geo: _Axis) -> Array:
    """The VJP of ``_max_along``: all of g to each window's winner, the last slice that beat
    every earlier one (so the first maximum); a 0/1 mask multiplies faster than where()."""
    pieces, rest = [g] * geo.kernel, g
    for i in range(geo.kernel - 1, 0, -1):
        pieces[i] = rest * xp.astype(masks[i - 1], g.dtype)
        rest = rest - pieces[i]
    pieces[0] = rest
    return geo.fold(xp, pieces, axis)


def _sum_along(xp: Any, x: Array, axis: int, geo: _Axis) -> Array:
    slices = geo.take(x, axis)
    if len(slices) == 1:
        return slices[0]
    total = slices[0] + slices[1]
    for piece in slices[2:]:
        total += piece  # total is new: in place saves an allocation per slice
    return total


# -- primitives ----------------------------------------------------------------------------------
class Conv2dFunction(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,).

    Forward: columns (C*kh*kw, Ho*Wo*N) from the kh*kw slices of the padded input in (C, H, W, N)
    order, then y = weight (O, C*kh*kw) @ columns. VJP: grad_weight = g @ columns.mT and
    grad_columns = weight.mT @ g (each one GEMM), folded back onto the input slice by slice.
    """

    saves = (1,)  # the columns are a copy of x; the weight is kept as it is
    fused = None  # the arrays' backend's ``conv2d`` fast path, set by conv2d

    def reads_saved(self, index):
        return self.needs_grad[0]

    def __init__(self, windows: _Windows):
        self.geometry = windows

    def forward(self, xp, x, weight, bias=None):
        geo = self.geometry
        if self.fused is not None:
            y, self.saved = self.fused.forward(x, weight, bias, geo)
            return y
        n, c = x.shape[0], x.shape[1]
        o = weight.shape[0]
        ho, wo = geo.out
        padded = geo.pad(xp, xp.permute_dims(x, _CHWN), 0.0, axis=1)  # (C, Hp, Wp, N)
        columns = xp.reshape(xp.stack(geo.windows(padded, axis=1), axis=1), (-1, ho * wo * n))
        self.columns, self.weight, self.n_c = columns, weight, (n, c)
        y = xp.matmul(xp.reshape(weight, (o, -1)), columns)  # (O, Ho*Wo*N)
        if bias is not None:
            y += bias[:, None]  # y is new: adding in place saves an allocation
        return xp.permute_dims(xp.reshape(y, (o, ho, wo, n)), _NCHW)

    def backward(self, g):
        if self.fused is not None:
            return self.fused.backward(self.saved, g, tuple(self.needs_grad) + (False,) * (3 - len(self.needs_grad)))
        xp, geo, weight = self.xp, self.geometry, self.weight
        o = weight.shape[0]
        g2 = xp.reshape(xp.permute_dims(g, _CHWN), (o, -1))  # (O, Ho*Wo*N): a view where g is the forward's layout
        grad_x = grad_w = grad_b = None
        if self.needs_grad[1]:
            grad_w = xp.reshape(xp.matmul(g2, xp.matrix_transpose(self.columns)), weight.shape)
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            grad_b = xp.sum(g2, axis=1)
        if self.needs_grad[0]:
            n, c = self.n_c
            k = weight.shape[2] * weight.shape[3]
            grad_columns = xp.reshape(xp.matmul(xp.matrix_transpose(xp.reshape(weight, (o, -1))), g2),
                                      (c, k) + geo.out + (n,))
            pieces = [grad_columns[:, i, ...] for i in range(k)]
            grad_x = xp.permute_dims(geo.fold(xp, pieces, axis=1), _NCHW)
        return grad_x, grad_w, grad_b


class MaxPool2dFunction(Function):
    """Max over each window of x (N, C, H, W), padded with -inf, in two separable passes.

    Ties: like PyTorch, the gradient goes to one position only, the first maximum in the
    window's row-major order (the first row holding the maximum, and its first column there).
    """

    fused = None  # the arrays' backend's ``max_pool2d`` fast path, set for tiled windows

    def __init__(self, windows: _Windows):
        self.geometry = windows

    def forward(self, xp, x):
        geo = self.geometry
        if self.fused is not None:
            kernel = (geo.rows.kernel, geo.cols.kernel)
            out, self.saved = self.fused.forward(x, kernel, self.needs_grad[0] and is_grad_enabled())
            return out
        row_maxima, self.col_masks = _max_along(xp, geo.pad(xp, x, -math.inf), 3, geo.cols)
        out, self.row_masks = _max_along(xp, row_maxima, 2, geo.rows)
        return out

    def backward(self, g):
        if self.fused is not None:
            return (self.fused.backward(self.saved, g),)
        xp, geo = self.xp, self.geometry
        row_grad = _unmax_along(xp, g, self.row_masks, 2, geo.rows)
        return (geo.crop(_unmax_along(xp, row_grad, self.col_masks, 3, geo.cols)),)


class AvgPool2dFunction(Function):
    """Mean over each window of x (N, C, H, W), zero-padded, in two separable passes;
    the divisor is the window size, or (count_include_pad=False) an (Ho, Wo) array counting
    each window's real positions."""

    def __init__(self, windows: _Windows, count_include_pad: bool):
        self.geometry, self.count_include_pad = windows, count_include_pad

    def _window_sums(self, xp, x):
        geo = self.geometry
        return _sum_along(xp, _sum_along(xp, geo.pad(xp, x, 0.0), 3, geo.cols), 2, geo.rows)

    def forward(self, xp, x):
        geo = self.geometry
        if self.count_include_pad or not any(geo.pads):
            self.divisor = float(geo.rows.kernel * geo.cols.kernel)
        else:  # how many real positions each window covers
            ones = xp.ones((1, 1, geo.rows.size, geo.cols.size), dtype=x.dtype, device=x.device)
            self.divisor = self._window_sums(xp, ones)
        return self._window_sums(xp, x) / self.divisor

    def backward(self, g):
        xp, geo = self.xp, self.geometry
        share = g / self.divisor
        row_grad = geo.rows.fold(xp, [share] * geo.rows.kernel, 2)
        return (geo.crop(geo.cols.fold(xp, [row_grad] * geo.cols.kernel, 3)),)


# -- functional spellings ------------------------------------------------------------------------
def _padding(padding, kernel, stride, dilation, name) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (PyTorch's rules:
    'same' needs stride 1 and puts an odd total's extra row or column at the bottom or right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{name}: padding='same' needs stride 1; got stride {stride}")
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return (totals[0] // 2, totals[0] - totals[0] // 2, totals[1] // 2, totals[1] - totals[1] // 2)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int, a pair, 'valid' or 'same'; got {padding!r}")
    ph, pw = _pair(padding, "padding", 0)
    return (ph, ph, pw, pw)


# dimensions -> layouts of the input and of the weight
_LAYOUTS = {1: ("(N, C, L)", "(out, in, k)"), 2: ("(N, C, H, W)", "(out, in, kh, kw)")}


def _check_input(x: Tensor, name: str, dims: int = 2) -> None:
    if x.ndim != dims + 2:
        raise ValueError(f"{name}: expected a {dims + 2}-D input {_LAYOUTS[dims][0]}; got {x.ndim}-D shape {x.shape}")


def _check_conv(x: Tensor, weight: Tensor, bias: Tensor | None, dims: int) -> None:
    name = f"conv{dims}d"
    _check_input(x, name, dims)
    if weight.ndim != dims + 2:
        raise ValueError(f"{name}: expected a {dims + 2}-D weight {_LAYOUTS[dims][1]}; got shape {weight.shape}")
    check_dtype_matches(name, x, weight)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels (shape {x.shape}); expected {weight.shape[1]} "
            f"(weight shape {weight.shape})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{name}: bias has shape {bias.shape}; expected ({weight.shape[0]},)")


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d`` (groups=1, zero padding).

    Args:
        x: (N, C, H, W). weight: (O, C, kh, kw). bias: (O,) or None.
        stride, dilation: an int or (h, w) pair. padding: an int, (h, w), 'valid' or 'same'.

    Shape:
        (N, O, Ho, Wo), Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (Wo likewise). Dtype: x's,
        which must be the weight's.

    Raises:
        TypeError: x is not a Tensor or array, or its dtype is not the weight's.
        ValueError: x or weight not 4-D, channels that differ, a bias of the wrong shape, bad
            stride, padding or dilation ('same' needs stride 1), a kernel larger than the
            padded input.
    """
    x = as_tensor(x)
    _check_conv(x, weight, bias, 2)
    kernel = (weight.shape[2], weight.shape[3])
    stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    pads = _padding(padding, kernel, stride, dilation, "conv2d")
    geometry = _Windows(x.shape[2:], kernel, stride, dilation, pads, "conv2d", x.shape)
    fn = Conv2dFunction(geometry)
    fn.fused = lookup("conv2d", x.data)
    return fn(x, weight) if bias is None else fn(x, weight, bias)


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
) -> Tensor:
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``: conv2d on a height of 1.

    Shape: x (N, C, L), weight (O, C, k), bias (O,) or None -> (N, O, Lo),
    Lo = (L + 2 * padding - dilation * (k - 1) - 1) // stride + 1. Dtype: x's, the weight's.

    Raises:
        TypeError: x is not a Tensor or array, or its dtype is not the weight's.
        ValueError: x or weight not 3-D, channels that differ, a kernel larger than the padded
            input, bad stride, padding or dilation.
    """
    x = as_tensor(x)
    _check_conv(x, weight, bias, 1)
    n, c, length = x.shape
    extent, padded = dilation * (weight.shape[2] - 1) + 1, length + 2 * (padding if isinstance(padding, int) else 0)
    if extent > padded and padding != "same":
        raise ValueError(
            f"conv1d: kernel {weight.shape[2]} (dilated extent {extent}) is larger than the padded input "
            f"length {padded} (input shape {x.shape}, padding {padding!r})"
        )
    padding = padding if isinstance(padding, str) else (0, padding)
    y = conv2d(
        ops.reshape(x, (n, c, 1, length)),
        ops.reshape(weight, weight.shape[:2] + (1, weight.shape[2])),
        bias,
        stride=(1, stride),
        padding=padding,
        dilation=(1, dilation),
    )
    return ops.reshape(y, (n, y.shape[1], y.shape[3]))


def _pool_geometry(x: Tensor, kernel_size, stride, padding, name: str) -> _Windows:
    _check_input(x, name)  # x is a Tensor: the pooling functions pass it through as_tensor
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    if 2 * ph > kernel[0] or 2 * pw > kernel[1]:
        raise ValueError(f"{name}: padding {(ph, pw)} must be at most half the kernel size {kernel}")
    return _Windows(x.shape[2:], kernel, stride, (1, 1), (ph, ph, pw, pw), name, x.shape)


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Max over kernel_size windows of x (N, C, H, W); stride defaults to kernel_size.

    Padding counts as -inf. A tie sends the whole gradient to the first maximum in the
    window's row-major order, as PyTorch does.

    Shape: (N, C, H, W) -> (N, C, Ho, Wo), Ho = (H + 2 * ph - kh) // sh + 1. Dtype: x's.

    Raises:
        ValueError: x not 4-D, a padding over half the kernel, bad sizes, a kernel larger than
            the padded input. TypeError: x is a list.
    """
    x = as_tensor(x)
    fn = MaxPool2dFunction(_pool_geometry(x, kernel_size, stride, padding, "max_pool2d"))
    if fn.geometry.tiled:
        fn.fused = lookup("max_pool2d", x.data)
    return fn(x)


def avg_pool2d(
    x: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    count_include_pad: bool = True,
) -> Tensor:
    """Mean over kernel_size windows of x (N, C, H, W); stride defaults to kernel_size.

    Padding counts as zeros; with count_include_pad=False a window's mean is over its real
    positions only.

    Shape: as ``max_pool2d``. Dtype: x's (floating).

    Raises:
        ValueError: as ``max_pool2d``. TypeError: x is a list.
    """
    x = as_tensor(x)
    geometry = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    return AvgPool2dFunction(geometry, count_include_pad)(x)


def adaptive_avg_pool2d(x: Tensor, output_size: IntPair) -> Tensor:
    """Mean pooling of x (N, C, H, W) to (N, C, oh, ow).

    Output size 1 (global average pooling) works for every input; other sizes need H and W to
    be multiples of them (equal windows); PyTorch's overlapping windows are not provided.

    Shape: (N, C, H, W) -> (N, C, oh, ow); None in output_size keeps that side. Dtype: x's.

    Raises:
        ValueError: x not 4-D, or H and W not multiples of the output size. TypeError: x is a list.
    """
    x = as_tensor(x)
    _check_input(x, "adaptive_avg_pool2d")
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    h, w = x.shape[2:]
    oh, ow = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if (oh, ow) == (1, 1):
        return ops.mean(x, axis=(2, 3), keepdims=True)
    if oh < 1 or ow < 1 or h % oh or w % ow:
        raise ValueError(
            f"adaptive_avg_pool2d: output size {(oh, ow)} needs an input whose height and width are "
            f"multiples of it; got {h}x{w} (only equal windows are supported; output size 1 always works)"
        )
    return avg_pool2d(x, (h // oh, w // ow))


# -- layers --------------------------------------------------------------------------------------
class _ConvNd(Module):
    """What Conv1d and Conv2d share: parameters in PyTorch's layout, init, repr."""

    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair | str = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        init: str | Callable = "default",
    ):
        super().__init__()
        check_sizes(type(self).__name__, in_channels=in_channels, out_channels=out_channels)
        tuples = _pair if self._dims == 2 else _single
        self.in_channels, self.out_channels, self.init = in_channels, out_channels, init
        self.kernel_size = tuples(kernel_size, "kernel_size", 1)
        self.stride = tuples(stride, "stride", 1)
        self.dilation = tuples(dilation, "dilation", 1)
        self.padding = padding if isinstance(padding, str) else tuples(padding, "padding", 0)
        self.weight = new_parameter((out_channels, in_channels) + self.kernel_size)
        self.bias = new_parameter((out_channels,)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        initialise(self.weight, self.bias, self.init)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._dims:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._dims:
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text


def _single(value, name: str, minimum: int) -> tuple[int]:
    if not isinstance(value, int):
        value = tuple(value)
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple of ints >= {minimum}; got {value!r}")
        value = value[0]
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return (value,)


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over NCHW images.

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size: an int or (kh, kw).
        stride, dilation: an int or (h, w) pair (default 1).
        padding: an int, (h, w), 'valid' or 'same' (zeros; default 0).
        bias: learn an additive bias per output channel (default True).
        init: "default" (PyTorch's: kaiming_uniform with a=sqrt(5), bias U(+-1/sqrt(fan_in))),
            "he", "xavier", ... (see nn.init.SCHEMES) or a callable that fills the weight.

    Shape:
        input (N, C_in, H, W) -> output (N, C_out, Ho, Wo),
        Ho = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1.
        weight (C_out, C_in, kh, kw), bias (C_out,): PyTorch's layout and names.

    Example:
        >>> conv = gd.nn.Conv2d(1, 32, 3, padding=1)
        >>> conv(gd.zeros((128, 1, 28, 28))).shape
        (128, 32, 28, 28)
    """

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation) over NCL sequences.

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size, stride, dilation: ints (stride and dilation default 1).
        padding: an int, 'valid' or 'same' (zeros; default 0).
        bias: learn an additive bias per output channel (default True).
        init: as for Conv2d.

    Shape:
        input (N, C_in, L) -> output (N, C_out, Lo), Lo = (L + 2*padding - dilation*(k - 1) - 1) // stride + 1.
        weight (C_out, C_in, k), bias (C_out,): PyTorch's layout and names.

    Example:
        >>> conv = gd.nn.Conv1d(4, 8, 5, padding=2)
        >>> conv(gd.zeros((16, 4, 100))).shape
        (16, 8, 100)
    """

    _dims = 1

    def forward(self, x: Tensor) -> Tensor:
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return conv1d(x, self.weight, self.bias, self.stride[0], padding, self.dilation[0])


class _Pool2d(Module):
    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over sliding windows of NCHW images.

    Args:
        kernel_size: an int or (kh, kw).
        stride: an int or pair (default kernel_size: windows side by side).
        padding: an int or pair, counted as -inf, at most half the kernel (default 0).

    Shape:
        input (N, C, H, W) -> output (N, C, Ho, Wo), Ho = (H + 2*padding - kh) // stride + 1.
        A tied maximum passes the gradient to its first position in row-major order (PyTorch's rule).

    Example:
        >>> gd.nn.MaxPool2d(2)(gd.zeros((8, 32, 28, 28))).shape
        (8, 32, 14, 14)
    """

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over sliding windows of NCHW images.

    Args:
        kernel_size: an int or (kh, kw).
        stride: an int or pair (default kernel_size).
        padding: an int or pair of zeros, at most half the kernel (default 0).
        count_include_pad: divide by the full window size (default True) or by the number of
            real (unpadded) positions in each window.

    Shape:
        input (N, C, H, W) -> output (N, C, Ho, Wo), Ho = (H + 2*padding - kh) // stride + 1.

    Example:
        >>> gd.nn.AvgPool2d(2)(gd.zeros((8, 32, 28, 28))).shape
        (8, 32, 14, 14)
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        count_include_pad: bool = True,
    ):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size; output size 1 is global average pooling.

    Args:
        output_size: an int or (oh, ow) (None keeps that input size). Sizes other than 1 need
            the input's height and width to be multiples of them.

    Shape:
        input (N, C, H, W) -> output (N, C, oh, ow).

    Example:
        >>> gd.nn.AdaptiveAvgPool2d(1)(gd.zeros((8, 64, 7, 7))).shape
        (8, 64, 1, 1)
    """

    def __init__(self, output_size: IntPair):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
