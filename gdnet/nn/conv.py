"""Convolution and pooling over NCHW (and NCL) tensors: fused primitives, functions, layers.

Portable on every array-API library: a kh x kw kernel is kh*kw strided slices of the padded
input. Convolution stacks the slices into one column matrix (im2col) and multiplies once;
the backward adds the column gradients back slice by slice into a zero buffer, so no scatter
is needed (the standard has none). Pooling takes the max or the sum of the same slices.

Layout: convolution works channel-major, on x permuted to (C, N, H, W). The columns are then
(C*kh*kw, N*Ho*Wo), so the forward and both weight and input gradients are each one large GEMM
with PyTorch's weight (out, in, kh, kw) read as an (out, in*kh*kw) matrix, and the output
(out, N, Ho, Wo) is handed on as an NCHW view without a copy. On NumPy this is 2-3x faster than
a batch of per-sample GEMMs or an NHWC column layout.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .. import ops
from ..autograd import Array, Function, Tensor
from .init import initialise
from .layers import _empty_parameter
from .module import Module

IntPair = int | Sequence[int]


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints >= {minimum}; got {value!r}")
    return pair  # type: ignore[return-value]


class _Windows:
    """Where each kernel offset's strided slice lies in a padded (..., H, W) array.

    ``pads`` is (top, bottom, left, right). The slices run over the kernel in row-major order,
    the order of PyTorch's weight (out, in, kh, kw) and of the window scan in its max pooling.
    """

    def __init__(self, size, kernel, stride, dilation, pads, name: str, shape):
        (h, w), (kh, kw), (sh, sw), (dh, dw) = size, kernel, stride, dilation
        top, bottom, left, right = pads
        self.size, self.pads = (h, w), pads
        self.padded = (h + top + bottom, w + left + right)
        extent = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        if extent[0] > self.padded[0] or extent[1] > self.padded[1]:
            raise ValueError(
                f"{name}: kernel {kh}x{kw} (dilated extent {extent[0]}x{extent[1]}) is larger than the "
                f"padded input {self.padded[0]}x{self.padded[1]} (input shape {shape}, padding {pads})"
            )
        ho = (self.padded[0] - extent[0]) // sh + 1
        wo = (self.padded[1] - extent[1]) // sw + 1
        self.out = (ho, wo)
        self.slices = [
            (slice(i * dh, i * dh + (ho - 1) * sh + 1, sh), slice(j * dw, j * dw + (wo - 1) * sw + 1, sw))
            for i in range(kh)
            for j in range(kw)
        ]
        # windows that never share an input position can be written back without adding
        self.overlap = sh < extent[0] or sw < extent[1]

    def pad(self, xp: Any, x: Array, fill: float) -> Array:
        """x (A, B, H, W) inside a (A, B, Hp, Wp) buffer of ``fill``; x itself without padding."""
        if not any(self.pads):
            return x
        top, _, left, _ = self.pads
        h, w = self.size
        buffer = xp.full(tuple(x.shape[:2]) + self.padded, fill, dtype=x.dtype, device=x.device)
        buffer[:, :, top : top + h, left : left + w] = x
        return buffer

    def windows(self, x: Array) -> list[Array]:
        """The kh*kw strided slices of a padded (A, B, Hp, Wp) array, each (A, B, Ho, Wo)."""
        return [x[:, :, rows, cols] for rows, cols in self.slices]

    def fold(self, xp: Any, pieces, lead: tuple[int, int], like: Array) -> Array:
        """The VJP of ``windows``: each piece (A, B, Ho, Wo) added back where its slice came from,
        then the padding cropped off -> (A, B, H, W)."""
        buffer = xp.zeros(lead + self.padded, dtype=like.dtype, device=like.device)
        for (rows, cols), piece in zip(self.slices, pieces):
            if self.overlap:
                buffer[:, :, rows, cols] += piece
            else:
                buffer[:, :, rows, cols] = piece
        if not any(self.pads):
            return buffer
        top, _, left, _ = self.pads
        h, w = self.size
        return buffer[:, :, top : top + h, left : left + w]


# -- primitives ----------------------------------------------------------------------------------
class Conv2dFunction(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,).

    Forward: columns (C*kh*kw, N*Ho*Wo) from the kh*kw slices of the channel-major padded input,
    then y = weight (O, C*kh*kw) @ columns. VJP: grad_weight = g @ columns.mT and
    grad_columns = weight.mT @ g (each one GEMM), folded back onto the input slice by slice.
    """

    def __init__(self, windows: _Windows):
        self.geometry = windows

    def forward(self, xp, x, weight, bias=None):
        geo = self.geometry
        n, c = x.shape[0], x.shape[1]
        o = weight.shape[0]
        ho, wo = geo.out
        channel_major = geo.pad(xp, xp.permute_dims(x, (1, 0, 2, 3)), 0.0)  # (C, N, Hp, Wp)
        columns = xp.reshape(xp.stack(geo.windows(channel_major), axis=1), (-1, n * ho * wo))
        self.columns, self.weight, self.n_c = columns, weight, (n, c)
        y = xp.matmul(xp.reshape(weight, (o, -1)), columns)  # (O, N*Ho*Wo)
        if bias is not None:
            y += bias[:, None]  # y is new: adding in place saves an allocation
        return xp.permute_dims(xp.reshape(y, (o, n, ho, wo)), (1, 0, 2, 3))

    def backward(self, g):
        xp, geo, weight = self.xp, self.geometry, self.weight
        o = weight.shape[0]
        g2 = xp.reshape(xp.permute_dims(g, (1, 0, 2, 3)), (o, -1))  # (O, N*Ho*Wo)
        grad_x = grad_w = grad_b = None
        if self.needs_grad[1]:
            grad_w = xp.reshape(xp.matmul(g2, self.columns.mT), weight.shape)
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            grad_b = xp.sum(g2, axis=1)
        if self.needs_grad[0]:
            n, c = self.n_c
            k = weight.shape[2] * weight.shape[3]
            grad_columns = xp.reshape(xp.matmul(xp.reshape(weight, (o, -1)).mT, g2), (c, k, n) + geo.out)
            pieces = (grad_columns[:, i, ...] for i in range(k))
            grad_x = xp.permute_dims(geo.fold(xp, pieces, (c, n), g), (1, 0, 2, 3))
        return grad_x, grad_w, grad_b


class MaxPool2dFunction(Function):
    """Max over each window of x (N, C, H, W), padded with -inf.

    Ties: like PyTorch, the gradient goes to one position only, the first maximum in the
    window's row-major order (a later slice must be strictly greater to take over).
    """

    def __init__(self, windows: _Windows):
        self.geometry = windows

    def forward(self, xp, x):
        slices = self.geometry.windows(self.geometry.pad(xp, x, -math.inf))
        best = slices[0]
        # which slice holds each maximum; int8 is enough for windows of up to 127 positions
        index_dtype = xp.int8 if len(slices) <= 127 else xp.int32
        self.argmax = xp.zeros(tuple(best.shape), dtype=index_dtype, device=x.device)
        for position, candidate in enumerate(slices[1:], start=1):
            self.argmax = xp.where(candidate > best, position, self.argmax)
            best = xp.maximum(best, candidate)
        self.x_shape = tuple(x.shape)
        return best

    def backward(self, g):
        xp, argmax = self.xp, self.argmax
        pieces = (xp.where(argmax == position, g, 0.0) for position in range(len(self.geometry.slices)))
        return (self.geometry.fold(xp, pieces, self.x_shape[:2], g),)


class AvgPool2dFunction(Function):
    """Mean over each window of x (N, C, H, W), zero-padded; ``divisor`` is the window size,
    or (count_include_pad=False) an (Ho, Wo) array counting each window's real positions."""

    def __init__(self, windows: _Windows, count_include_pad: bool):
        self.geometry, self.count_include_pad = windows, count_include_pad

    def _window_sums(self, xp, x):
        slices = self.geometry.windows(self.geometry.pad(xp, x, 0.0))
        if len(slices) == 1:
            return slices[0]
        total = slices[0] + slices[1]
        for piece in slices[2:]:
            total += piece  # total is new: in place saves an allocation per slice
        return total

    def forward(self, xp, x):
        geo = self.geometry
        if self.count_include_pad or not any(geo.pads):
            self.divisor = float(len(geo.slices))
        else:  # how many real positions each window covers
            self.divisor = self._window_sums(xp, xp.ones((1, 1) + geo.size, dtype=x.dtype, device=x.device))
        self.x_shape = tuple(x.shape)
        return self._window_sums(xp, x) / self.divisor

    def backward(self, g):
        share = g / self.divisor
        pieces = (share for _ in self.geometry.slices)
        return (self.geometry.fold(self.xp, pieces, self.x_shape[:2], g),)


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
    Returns:
        (N, O, Ho, Wo), Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1.
    """
    _check_conv(x, weight, bias, 2)
    kernel = (weight.shape[2], weight.shape[3])
    stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    pads = _padding(padding, kernel, stride, dilation, "conv2d")
    geometry = _Windows(x.shape[2:], kernel, stride, dilation, pads, "conv2d", x.shape)
    fn = Conv2dFunction(geometry)
    return fn(x, weight) if bias is None else fn(x, weight, bias)


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
) -> Tensor:
    """1-D cross-correlation of x (N, C, L) with weight (O, C, k): conv2d on a height of 1."""
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
    _check_input(x, name)
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
    """
    return MaxPool2dFunction(_pool_geometry(x, kernel_size, stride, padding, "max_pool2d"))(x)


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
    """
    geometry = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    return AvgPool2dFunction(geometry, count_include_pad)(x)


def adaptive_avg_pool2d(x: Tensor, output_size: IntPair) -> Tensor:
    """Mean pooling of x (N, C, H, W) to (N, C, oh, ow).

    Output size 1 (global average pooling) works for every input; other sizes need H and W to
    be multiples of them (equal windows); PyTorch's overlapping windows are not provided.
    """
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
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(
                f"{type(self).__name__} needs positive channel counts; got in_channels={in_channels}, "
                f"out_channels={out_channels}"
            )
        tuples = _pair if self._dims == 2 else _single
        self.in_channels, self.out_channels, self.init = in_channels, out_channels, init
        self.kernel_size = tuples(kernel_size, "kernel_size", 1)
        self.stride = tuples(stride, "stride", 1)
        self.dilation = tuples(dilation, "dilation", 1)
        self.padding = padding if isinstance(padding, str) else tuples(padding, "padding", 0)
        self.weight = _empty_parameter((out_channels, in_channels) + self.kernel_size)
        self.bias = _empty_parameter((out_channels,)) if bias else None
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
