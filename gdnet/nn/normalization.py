"""Normalisation layers: BatchNorm1d, BatchNorm2d, LayerNorm, and their functional spellings.

Both rest on one fused primitive, ``Normalize``: (x - mean) / sqrt(var + eps) * weight + bias
with its VJP written out. Fused rather than composed from mean/sub/mul/sqrt/div: on NumPy, for
the (128, 32, 28, 28) float32 activations of the first block of benchmarks/cnn.py, forward +
backward of the composite takes about 2.5x the CPU time of the fused one (47-56 against
19-22 ms): the composite's nine nodes each write their own arrays and undo broadcasting on their
own, while the hand-written VJP needs two batch sums, which are also the weight and bias
gradients, takes the sums of products with vecdot (no product array), and never writes x_hat.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .. import distributed
from .._checks import checked_number
from ..autograd import Array, Function, Tensor, as_tensor, check_dtype_matches, no_grad, sum_to
from ..fast_paths import lookup
from .module import Module, check_sizes, new_buffer, new_parameter


def _dot_over(xp: Any, a: Array, b: Array, axes: tuple[int, ...]) -> Array:
    """sum(a * b) over ``axes``, keepdims. Where the last axes are among them, vecdot folds the
    product into the sum over those (merged) axes, so no product array is written."""
    ndim = a.ndim
    trailing = 0
    while trailing < len(axes) and axes[len(axes) - 1 - trailing] == ndim - 1 - trailing:
        trailing += 1
    keep = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    if trailing == 0:
        return xp.sum(a * b, axis=axes, keepdims=True)
    lead = tuple(a.shape[: ndim - trailing])
    dots = xp.vecdot(xp.reshape(a, lead + (-1,)), xp.reshape(b, lead + (-1,)), axis=-1)
    rest = axes[: len(axes) - trailing]
    return xp.reshape(xp.sum(dots, axis=rest) if rest else dots, keep)


class Normalize(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over ``axes``.

    Args:
        axes: the axes each mean and variance is taken over (sorted, non-negative).
        param_shape: weight and bias reshaped to broadcast against x (e.g. (1, C, 1, 1)).
        eps: added to the variance.
        stats: None to use x's own (biased) statistics, or (mean, var) arrays in param_shape's
            broadcastable layout (evaluation with running statistics).

    After the forward, ``batch_mean`` and ``batch_var`` (keepdims layout) hold the statistics used.
    Saved for the VJP: x - mean and 1 / sqrt(var + eps); x_hat itself is never written out.
    """

    saves = (1,)  # the weight, read for the input's gradient

    def reads_saved(self, index):
        return self.needs_grad[0]

    fused = None  # the arrays' backend's ``batch_norm`` fast path (batch statistics over every axis but 1)

    def __init__(self, axes: tuple[int, ...], param_shape: tuple[int, ...], eps: float, stats=None):
        self.axes, self.param_shape, self.eps, self.stats = axes, param_shape, eps, stats

    def forward(self, xp, x, weight=None, bias=None):
        axes = self.axes
        self.count = float(math.prod(x.shape[a] for a in axes))
        if self.fused is not None:
            y, mean, var, self.saved = self.fused.forward(x, weight, bias, self.eps)
            self.batch_mean, self.batch_var = xp.reshape(mean, self.param_shape), xp.reshape(var, self.param_shape)
            return y
        if self.stats is None:
            mean, centred, var = self.batch_statistics(xp, x)
        else:
            mean, var = self.stats
            centred = x - mean
        self.batch_mean, self.batch_var, self.centred = mean, var, centred
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        self.weight = None if weight is None else xp.reshape(weight, self.param_shape)
        self.scale = self.inv_std if weight is None else self.inv_std * self.weight
        self.arg_shapes = (_shape(weight), _shape(bias))
        y = centred * self.scale
        if bias is not None:
            y += xp.reshape(bias, self.param_shape)  # y is new: adding in place saves an allocation
        return y

    def batch_statistics(self, xp, x):
        """(mean, x - mean, biased variance) of x over ``axes``, keepdims layout."""
        mean = xp.mean(x, axis=self.axes, keepdims=True)
        centred = x - mean
        return mean, centred, _dot_over(xp, centred, centred, self.axes) / self.count

    def input_sums(self, xp, g_sum, g_x_hat_sum):
        """The sums of g and g * x_hat over the statistics' axes that the input's gradient
        uses (the batch's own; SyncNormalize adds the other ranks')."""
        return g_sum, g_x_hat_sum

    def backward(self, g):
        wants = self.needs_grad + [False] * (3 - len(self.needs_grad))
        if self.fused is not None:
            return self.fused.backward(self.saved, g, wants)
        xp, centred, inv_std, w, axes = self.xp, self.centred, self.inv_std, self.weight, self.axes
        grad_w = grad_b = grad_x = None
        # BatchNorm: the parameters broadcast over exactly the statistics' axes, so the sums over
        # those axes are the parameter gradients and serve the input's too
        if tuple(1 if a in axes else n for a, n in enumerate(g.shape)) == self.param_shape:
            g_sum = xp.sum(g, axis=axes, keepdims=True)
            g_x_hat_sum = _dot_over(xp, g, centred, axes) * inv_std  # sum(g * x_hat)
            if wants[1]:
                grad_w = xp.reshape(g_x_hat_sum, self.arg_shapes[0])
            if wants[2]:
                grad_b = xp.reshape(g_sum, self.arg_shapes[1])
            if wants[0] and self.stats is not None:  # constant statistics: affine in x
                grad_x = g * self.scale
            elif wants[0]:
                g_sum, g_x_hat_sum = self.input_sums(xp, g_sum, g_x_hat_sum)
                # dx = (g - mean(g) - x_hat * mean(g * x_hat)) * scale, built in one new array
                grad_x = centred * (inv_std * g_x_hat_sum * (-1.0 / self.count))
                grad_x += g
                grad_x -= g_sum / self.count
                grad_x *= self.scale
            return grad_x, grad_w, grad_b
        # LayerNorm: the weight varies within each statistic
        x_hat = centred * inv_std
        if wants[1]:
            grad_w = xp.reshape(sum_to(xp, g * x_hat, self.param_shape), self.arg_shapes[0])
        if wants[2]:
            grad_b = xp.reshape(sum_to(xp, g, self.param_shape), self.arg_shapes[1])
        if wants[0] and self.stats is not None:
            grad_x = g * self.scale
        elif wants[0]:  # dx = (d - mean(d) - x_hat * mean(d * x_hat)) * inv_std, d = g * weight
            d = g if w is None else g * w
            grad_x = d - xp.mean(d, axis=axes, keepdims=True)
            grad_x -= x_hat * (_dot_over(xp, d, x_hat, axes) / self.count)
            grad_x *= inv_std
        return grad_x, grad_w, grad_b


def _shape(array) -> tuple[int, ...] | None:
    return None if array is None else tuple(array.shape)


def _normalize(x: Tensor, axes, param_shape, eps, weight, bias, stats=None,
               function: type[Normalize] = Normalize, batch: bool = False) -> tuple[Tensor, Normalize]:
    """``function`` over ``axes`` applied to x; ``batch``: the statistics are over every axis but
    the channel axis 1 (BatchNorm's)."""
    fn = function(axes, param_shape, eps, stats)
    if function is Normalize and stats is None and batch:  # SyncNormalize communicates: no fast path
        fn.fused = lookup("batch_norm", x.data)
    args = [x, weight, bias]
    while args[-1] is None and len(args) > 1:  # trailing absent parameters are left out
        args.pop()
    return fn(*args), fn


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float | Any = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over every axis but the channel axis 1 of x (N, C, ...).

    Training (or no running statistics): normalise by the batch's mean and biased variance and,
    where running buffers are given, move them towards the batch's mean and unbiased variance:
    ``running = (1 - momentum) * running + momentum * batch`` (in place of the buffers' data,
    under no_grad, with no device synchronisation; momentum may be a 0-d array). Evaluation:
    normalise by the running statistics.

    Shape: x (N, C, ...) -> the same; running_mean, running_var, weight, bias (C,) or None.
    Dtype: x's, which must be the weight's.

    Raises:
        TypeError: x is not a Tensor or array, or its dtype is not the weight's (or, without a
            weight, the running statistics').
        ValueError: x under 2-D, statistics or parameters not (C,), evaluation without
            running statistics, training on one value per channel.
    """
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, Normalize)


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, function: type[Normalize]):
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input (N, C, ...) of 2 or more dimensions; got shape {x.shape}")
    channels = x.shape[1]
    for name, tensor in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                         ("bias", bias)):
        if tensor is not None and tensor.shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} has shape {tensor.shape}; expected ({channels},) for the {channels} "
                f"channels of input {x.shape}"
            )
    reference = weight if weight is not None else running_mean
    if reference is not None:
        check_dtype_matches("batch_norm", x, reference, "weight" if weight is not None else "running_mean")
    axes = (0,) + tuple(range(2, x.ndim))
    param_shape = (1, channels) + (1,) * (x.ndim - 2)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
        xp = x.xp
        stats = (xp.reshape(running_mean.data, param_shape), xp.reshape(running_var.data, param_shape))
        return _normalize(x, axes, param_shape, eps, weight, bias, stats)[0]
    count = math.prod(x.shape[a] for a in axes)
    if count < 2:
        raise ValueError(
            f"batch_norm: training needs more than 1 value per channel to take a variance; got input shape {x.shape}"
        )
    y, fn = _normalize(x, axes, param_shape, eps, weight, bias, function=function, batch=True)
    if running_mean is not None and running_var is not None:
        xp = x.xp
        with no_grad():
            count = fn.count  # every rank's values under SyncBatchNorm
            unbiased = xp.reshape(fn.batch_var, (channels,)) * (count / (count - 1))
            for running, batch in ((running_mean, xp.reshape(fn.batch_mean, (channels,))), (running_var, unbiased)):
                new = running.data * (1.0 - momentum) + batch * momentum
                # the buffers keep their dtype, whatever the input's
                running.data = new if new.dtype == running.dtype else xp.astype(new, running.dtype)
    return y


def layer_norm(
    x: Tensor,
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each sample over its last len(normalized_shape) axes, then scale and shift
    elementwise by weight and bias (each of normalized_shape).

    Shape: x (*, *normalized_shape) -> the same. Dtype: x's, which must be the weight's.

    Raises:
        TypeError: x is not a Tensor or array, or its dtype is not the weight's.
        ValueError: x's shape does not end in normalized_shape, or weight or bias is not of it.
    """
    x = as_tensor(x)
    if weight is not None:
        check_dtype_matches("layer_norm", x, weight)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if x.shape[x.ndim - k :] != shape or x.ndim < k:
        raise ValueError(
            f"layer_norm: input shape {x.shape} does not end in normalized_shape {shape}"
        )
    for name, tensor in (("weight", weight), ("bias", bias)):
        if tensor is not None and tensor.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {tensor.shape}; expected {shape}")
    axes = tuple(range(x.ndim - k, x.ndim))
    return _normalize(x, axes, (1,) * (x.ndim - k) + shape, eps, weight, bias)[0]


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; subclasses say which input ranks they take."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        check_sizes(type(self).__name__, num_features=num_features)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"Invalid momentum: {momentum} (expected a value in [0, 1] or None)")
        checked_number(eps, "eps")  # a negative eps gives the square root of a negative variance
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = new_parameter((num_features,), 1.0) if affine else None
        self.bias = new_parameter((num_features,), 0.0) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", new_buffer((num_features,), 0.0))
            self.register_buffer("running_var", new_buffer((num_features,), 1.0))
            self.register_buffer("num_batches_tracked", new_buffer((), 0, "int64"))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            for name, value in (("running_mean", 0), ("running_var", 1), ("num_batches_tracked", 0)):
                buffer = getattr(self, name)
                buffer.data = buffer.xp.full(buffer.shape, value, dtype=buffer.dtype, device=buffer.device)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight.data = self.weight.xp.ones_like(self.weight.data)
            self.bias.data = self.bias.xp.zeros_like(self.bias.data)

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        x = as_tensor(x)
        if x.ndim not in self._ranks:
            raise ValueError(f"{name}: expected {self._layout} input; got {x.ndim}-D shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{name}: input has {x.shape[1]} channels (shape {x.shape}); expected {self.num_features} "
                "(num_features)"
            )
        factor: Any = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            tracked = self.num_batches_tracked
            tracked.data = tracked.data + 1
            if self.momentum is None:  # a cumulative average, its weight kept on the device
                factor = 1.0 / x.xp.astype(tracked.data, x.dtype)
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return _batch_norm(
            x,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
            self._normalizer(),
        )

    def _normalizer(self) -> type[Normalize]:
        return Normalize

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences (Ioffe & Szegedy, 2015).

    y = (x - mean) / sqrt(var + eps) * weight + bias per channel C. Training uses the batch's
    mean and biased variance and updates the running statistics (running_var from the unbiased
    variance, as PyTorch); evaluation (``eval()``) uses the running statistics.

    Args:
        num_features: C.
        eps: added to the variance (default 1e-5).
        momentum: weight of the batch in the running statistics (default 0.1); None for a
            cumulative average over all batches seen.
        affine: learn weight (ones) and bias (zeros) per channel (default True).
        track_running_stats: keep running_mean, running_var and num_batches_tracked buffers
            (default True); without them evaluation also uses batch statistics.

    Shape:
        input (N, C) or (N, C, L) -> output of the same shape.

    Example:
        >>> gd.nn.BatchNorm1d(100)(gd.randn(32, 100)).shape
        (32, 100)
    """

    _ranks, _layout = (2, 3), "a 2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images per channel (Ioffe & Szegedy, 2015).

    As BatchNorm1d (the same arguments, training and evaluation behaviour), with statistics
    over N, H and W.

    Shape:
        input (N, C, H, W) -> output of the same shape.

    Example:
        >>> gd.nn.BatchNorm2d(32)(gd.randn(8, 32, 28, 28)).shape
        (8, 32, 28, 28)
    """

    _ranks, _layout = (4,), "a 4-D (N, C, H, W)"


class SyncNormalize(Normalize):
    """Normalize with batch statistics over every rank's batch (gdnet.distributed): the
    forward gathers each rank's count, mean and sum of squared deviations and combines them
    (Chan et al.'s parallel variance, as PyTorch's SyncBatchNorm gathers per-rank statistics);
    the backward sums g and g * x_hat over the ranks, which makes the input gradient that of
    the sum of every rank's loss. The weight and bias gradients stay per rank, for
    DistributedDataParallel to average. ``count`` is a 0-d array (read without a host sync)."""

    def batch_statistics(self, xp, x):
        axes, channels = self.axes, x.shape[1]
        local_mean = xp.mean(x, axis=axes, keepdims=True)
        local_centred = x - local_mean
        local_m2 = _dot_over(xp, local_centred, local_centred, axes)
        count = xp.full((1,), self.count, dtype=x.dtype, device=x.device)
        packed = xp.concat([xp.reshape(local_mean, (-1,)), xp.reshape(local_m2, (-1,)), count])
        gathered = distributed.gather_array(packed, check=False)  # (ranks, 2C + 1): equal by construction
        counts = gathered[:, 2 * channels:]
        means, m2s = gathered[:, :channels], gathered[:, channels:2 * channels]
        self.count = total = xp.sum(counts)
        mean = xp.sum(means * counts, axis=0) / total
        m2 = xp.sum(m2s, axis=0) + xp.sum(counts * (means - mean) ** 2, axis=0)
        mean = xp.reshape(mean, self.param_shape)
        return mean, x - mean, xp.reshape(m2 / total, self.param_shape)

    def input_sums(self, xp, g_sum, g_x_hat_sum):
        channels = g_sum.shape[1]
        packed = xp.concat([xp.reshape(g_sum, (-1,)), xp.reshape(g_x_hat_sum, (-1,))])
        summed = distributed.reduce_array(packed, "sum")
        return (xp.reshape(summed[:channels], g_sum.shape), xp.reshape(summed[channels:], g_x_hat_sum.shape))


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation with statistics over the whole batch of every rank, for
    DistributedDataParallel training (BatchNorm1d/2d normalise each rank's batch alone, as in
    PyTorch). In training each forward combines the ranks' statistics (one all-gather) and
    each backward sums two per-channel terms (one all-reduce); the running statistics are then
    the same on every rank. In evaluation, and without ``gd.distributed.init_process_group()``
    or with one process, it is BatchNorm. The arguments are BatchNorm1d's.

    Shape:
        input (N, C, ...) of 2 to 5 dimensions -> output of the same shape.

    Example:
        >>> model = gd.nn.SyncBatchNorm.convert_sync_batchnorm(model)   # every BatchNorm*d
    """

    _ranks, _layout = (2, 3, 4, 5), "a 2-D to 5-D (N, C, ...)"

    def _normalizer(self) -> type[Normalize]:
        # evaluation never communicates (ranks may then run different numbers of batches)
        return SyncNormalize if self.training and distributed.world_size() > 1 else Normalize

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """``module`` with every BatchNorm1d/2d in it replaced by a SyncBatchNorm that keeps
        its parameters and buffers (the same tensors); a BatchNorm given alone comes back
        converted."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
            converted.weight, converted.bias = module.weight, module.bias
            for name, buffer in module._buffers.items():
                converted.register_buffer(name, buffer)
            converted.train(module.training)
            return converted
        for name, child in list(module._modules.items()):
            setattr(module, name, cls.convert_sync_batchnorm(child))
        return module


class LayerNorm(Module):
    """Layer normalisation over each sample's last dimensions (Ba, Kiros & Hinton, 2016).

    Args:
        normalized_shape: an int or the trailing shape the statistics are taken over.
        eps: added to the variance (default 1e-5).
        elementwise_affine: learn weight (ones) and bias (zeros) of normalized_shape (default True).
        bias: with elementwise_affine, learn the bias too (default True).

    Shape:
        input (..., *normalized_shape) -> output of the same shape.

    Example:
        >>> gd.nn.LayerNorm(64)(gd.randn(8, 10, 64)).shape
        (8, 10, 64)
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape:
            raise ValueError(f"LayerNorm needs a non-empty normalized_shape of positive sizes; got {normalized_shape}")
        check_sizes("LayerNorm", **{f"normalized_shape[{i}]": n for i, n in enumerate(shape)})
        checked_number(eps, "eps")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = new_parameter(shape, 1.0) if elementwise_affine else None
        self.bias = new_parameter(shape, 0.0) if elementwise_affine and bias else None

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data = self.weight.xp.ones_like(self.weight.data)
        if self.bias is not None:
            self.bias.data = self.bias.xp.zeros_like(self.bias.data)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
