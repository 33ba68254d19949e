"""Fused CUDA kernels registered as the cupy backend's fast paths.

Each does, in one launch, what its portable reference in gdnet's core does with several array
operations (``gdnet.fast_paths.REFERENCES`` names them); tests generated from that registry
assert they agree on the cupy row. A weight-decay term is skipped where its coefficient is 0,
as the reference skips it, so an infinite parameter never turns into 0 * inf = NaN.
"""

from __future__ import annotations

import cupy

from ._base import register_fast_path

FAST_PATHS: dict = {}  # name -> implementation: the cupy backend's ``kernels``

# -- softmax cross-entropy against class indices ----------------------------------------------
# Forward: one block walks the rows (one thread per row at a time), writes the softmax and the
# per-sample loss, and reduces the losses in shared memory in a fixed order (the same bits every
# run). Backward: one elementwise pass, (softmax - one_hot) * incoming gradient.
_SCE_THREADS = 256
_SCE_FORWARD = r"""
extern "C" __global__ void gdnet_sce_forward_{name}({T}* probs, {T}* per_sample, {T}* loss,
        const {T}* logits, const long long* labels, const int n, const int c, const int mean) {{
    __shared__ double partial[{threads}];
    double local = 0.0;
    for (int row = threadIdx.x; row < n; row += blockDim.x) {{
        const {T}* x = logits + (long long)row * c;
        {T}* p = probs + (long long)row * c;
        {T} top = x[0];
        for (int j = 1; j < c; ++j) top = x[j] > top ? x[j] : top;
        {T} total = 0;
        for (int j = 0; j < c; ++j) {{ {T} e = exp(x[j] - top); p[j] = e; total += e; }}
        for (int j = 0; j < c; ++j) p[j] /= total;
        {T} value = log(total) - (x[labels[row]] - top);
        per_sample[row] = value;
        local += (double)value;
    }}
    partial[threadIdx.x] = local;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {{
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }}
    if (threadIdx.x == 0) loss[0] = ({T})(mean ? partial[0] / n : partial[0]);
}}
"""
_SCE_KERNELS = {
    dtype: cupy.RawKernel(_SCE_FORWARD.format(name=name, T=ctype, threads=_SCE_THREADS), f"gdnet_sce_forward_{name}")
    for dtype, name, ctype in ((cupy.float32, "f32", "float"), (cupy.float64, "f64", "double"))
}
_sce_backward = cupy.ElementwiseKernel(
    "raw T probs, raw int64 labels, raw T grad, int32 c, int32 n, int32 reduction",
    "T out",
    """
    int row = i / c;
    T g = reduction == 0 ? grad[row] : (reduction == 1 ? grad[0] / (T)n : grad[0]);
    out = (probs[i] - (i % c == labels[row] ? (T)1 : (T)0)) * g;
    """,
    "gdnet_sce_backward",
)
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


class _SoftmaxCrossEntropy:
    """gdnet.ops.SoftmaxCrossEntropy against class indices, one kernel each way (float16 logits
    are computed in float32 and the results cast back)."""

    @staticmethod
    def forward(logits, labels, reduction):
        dtype = logits.dtype
        if dtype.type not in _SCE_KERNELS:
            logits = logits.astype(cupy.float32)
        kernel = _SCE_KERNELS[logits.dtype.type]
        n, c = logits.shape
        logits = cupy.ascontiguousarray(logits)
        if labels.dtype != cupy.int64:
            labels = labels.astype(cupy.int64)
        labels = cupy.ascontiguousarray(labels)
        probs = cupy.empty_like(logits)
        per_sample = cupy.empty((n,), dtype=logits.dtype)
        loss = cupy.empty((), dtype=logits.dtype)
        kernel((1,), (_SCE_THREADS,), (probs, per_sample, loss, logits, labels, cupy.int32(n), cupy.int32(c),
                                       cupy.int32(reduction == "mean")))
        result = per_sample if reduction == "none" else loss
        return result.astype(dtype, copy=False), (probs, labels, dtype)

    @staticmethod
    def backward(saved, labels, grad, reduction):
        probs, labels, dtype = saved
        n, c = probs.shape
        out = cupy.empty_like(probs)
        grad = cupy.ascontiguousarray(grad.astype(probs.dtype, copy=False))
        _sce_backward(probs, labels, grad, c, n, _REDUCTIONS[reduction], out)
        return out.astype(dtype, copy=False)


FAST_PATHS["softmax_cross_entropy"] = _SoftmaxCrossEntropy

# -- optimizers --------------------------------------------------------------------------------
# SGD with momentum (after the first step made the buffer), as gdnet.optim.SGD's chain
_sgd_momentum = cupy.ElementwiseKernel(
    "T grad, T lr, T momentum, T rate, T decay, bool nesterov",
    "T param, T buffer",
    """
    T g = decay == (T)0 ? grad : grad + decay * param;
    buffer = momentum * buffer + rate * g;
    param -= lr * (nesterov ? g + momentum * buffer : buffer);
    """,
    "gdnet_sgd_momentum",
)


@register_fast_path(FAST_PATHS, "sgd_momentum")
def sgd_momentum(params, grads, buffers, lr, momentum, dampening, decay, nesterov) -> None:
    """In place: the same update as gdnet.optim.SGD's reference chain, one launch per parameter."""
    for param, grad, buffer in zip(params, grads, buffers):
        dtype = param.dtype.type
        _sgd_momentum(grad, dtype(lr), dtype(momentum), dtype(1.0 - dampening), dtype(decay), bool(nesterov), param,
                      buffer)


# Adam / AdamW, line for line as gdnet.optim.adam's chain: add_decayed_weights (l2),
# scale_by_adam (bias corrections folded into scale and eps by transform.adam_scalars),
# add_decayed_weights(decoupled=True) (decoupled), scale_by_learning_rate
# rate1 = 1 - beta1 and rate2 = 1 - beta2 come from Python (double), as the reference's do
_ADAM_PARAMS = "T grad, T lr, T rate1, T beta2, T rate2, T scale, T eps, T l2, T decoupled"
_ADAM_MOMENTS = """
    T g = l2 == (T)0 ? grad : grad + l2 * param;
    exp_avg += (g - exp_avg) * rate1;
    exp_avg_sq = exp_avg_sq * beta2 + (g * g) * rate2;
"""
_ADAM_STEP = """
    T u = exp_avg / (sqrt(second) * scale + eps);
    if (decoupled != (T)0) u += decoupled * param;
    param += u * -lr;
"""
_adam = cupy.ElementwiseKernel(
    _ADAM_PARAMS,
    "T param, T exp_avg, T exp_avg_sq",
    _ADAM_MOMENTS + "T second = exp_avg_sq;" + _ADAM_STEP,
    "gdnet_adam",
)
_adam_amsgrad = cupy.ElementwiseKernel(
    _ADAM_PARAMS,
    "T param, T exp_avg, T exp_avg_sq, T max_exp_avg_sq",
    _ADAM_MOMENTS
    # the running maximum, NaN-propagating like xp.maximum
    + "if (max_exp_avg_sq < exp_avg_sq || exp_avg_sq != exp_avg_sq) max_exp_avg_sq = exp_avg_sq;"
    + "T second = max_exp_avg_sq;"
    + _ADAM_STEP,
    "gdnet_adam_amsgrad",
)


@register_fast_path(FAST_PATHS, "adam")
def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1, beta2, eps, scale, eps_hat,
         l2, decoupled) -> None:
    """In place: the same update as gdnet.optim.Adam's reference chain, one launch per parameter
    (AdamW: ``l2`` 0 and ``decoupled`` the weight decay; Adam the other way round).
    ``max_exp_avg_sqs`` is None without amsgrad."""
    for i, (param, grad, exp_avg, exp_avg_sq) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        dtype = param.dtype.type
        scalars = (dtype(lr), dtype(1.0 - beta1), dtype(beta2), dtype(1.0 - beta2), dtype(scale), dtype(eps_hat),
                   dtype(l2), dtype(decoupled))
        if max_exp_avg_sqs is None:
            _adam(grad, *scalars, param, exp_avg, exp_avg_sq)
        else:
            _adam_amsgrad(grad, *scalars, param, exp_avg, exp_avg_sq, max_exp_avg_sqs[i])
