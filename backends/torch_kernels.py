"""torch's fused and multi-tensor operations, registered as the torch backend's fast paths.

Each does what its portable reference in gdnet's core does (``gdnet.fast_paths.REFERENCES``
names them) in fewer operations, so fewer kernel launches on a GPU:
``softmax_cross_entropy`` two each way instead of about ten, ``linear`` one (addmm) instead
of two, ``relu_backward`` one instead of three, ``sigmoid`` one each way instead of seven and
three, ``tanh_backward`` one instead of three, ``take_rows`` one instead of four, and the
optimizers one or a few multi-tensor calls for all parameters instead of several operations
per parameter.
"""

from __future__ import annotations

import torch

from ._base import register_fast_path

FAST_PATHS: dict = {}  # name -> implementation: the torch backend's ``kernels``

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}  # at::Reduction
_NO_IGNORED_INDEX = -100  # nll_loss's ignore_index (the range check keeps labels >= 0)
_aten = torch.ops.aten


class _SoftmaxCrossEntropy:
    """log_softmax then nll_loss, forward and backward, as torch.nn.functional.cross_entropy
    runs them (two operations each way)."""

    @staticmethod
    def forward(logits, labels, reduction):
        if labels.dtype != torch.int64:
            labels = labels.to(torch.int64)
        log_probs = _aten._log_softmax(logits, 1, False)
        loss, total_weight = _aten.nll_loss_forward(log_probs, labels, None, _REDUCTIONS[reduction],
                                                    _NO_IGNORED_INDEX)
        return loss, (log_probs, total_weight, labels)

    @staticmethod
    def backward(saved, labels, grad, reduction):
        log_probs, total_weight, labels = saved
        grad_log_probs = _aten.nll_loss_backward(grad, log_probs, labels, None, _REDUCTIONS[reduction],
                                                 _NO_IGNORED_INDEX, total_weight)
        return _aten._log_softmax_backward_data(grad_log_probs, log_probs, 1, log_probs.dtype)


FAST_PATHS["softmax_cross_entropy"] = _SoftmaxCrossEntropy


@register_fast_path(FAST_PATHS, "linear")
def linear(x, weight, bias):
    """x @ weight.mT + bias in one matrix product (the bias is the product's C term)."""
    return torch.addmm(bias, x, weight.mT)


@register_fast_path(FAST_PATHS, "relu_backward")
def relu_backward(grad, out):
    """grad where out > 0, else 0: one operation (torch's own ReLU backward)."""
    return _aten.threshold_backward(grad, out, 0)


class _Sigmoid:
    """torch's sigmoid and its backward: one operation each way (the portable sigmoid takes
    seven, to stay finite for large |a| without a library's own)."""

    @staticmethod
    def forward(a):
        return torch.sigmoid(a)

    @staticmethod
    def backward(grad, out):
        return _aten.sigmoid_backward(grad, out)


FAST_PATHS["sigmoid"] = _Sigmoid


@register_fast_path(FAST_PATHS, "tanh_backward")
def tanh_backward(grad, out):
    """grad * (1 - out**2) in one operation."""
    return _aten.tanh_backward(grad, out)


@register_fast_path(FAST_PATHS, "take_rows")
def take_rows(x, indices):
    """Rows at indices known to be non-negative: one gather (the standard's take first wraps
    negative indices, three more operations)."""
    return torch.index_select(x, 0, indices)


def _fused(params) -> bool:
    """torch has fused CPU and CUDA optimizer kernels; other devices (mps, meta) use foreach."""
    return params[0].device.type in ("cpu", "cuda")


@register_fast_path(FAST_PATHS, "sgd_momentum")
def sgd_momentum(params, grads, buffers, lr, momentum, dampening, weight_decay, nesterov) -> None:
    """In place, all parameters in one call: gdnet.optim.SGD's chain after the first step."""
    if _fused(params):
        torch._fused_sgd_(params, grads, buffers, weight_decay=weight_decay, momentum=momentum, lr=lr,
                          dampening=dampening, nesterov=nesterov, maximize=False, is_first_step=False)
        return
    if weight_decay != 0.0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(buffers, momentum)
    torch._foreach_add_(buffers, grads, alpha=1.0 - dampening)
    update = torch._foreach_add(grads, buffers, alpha=momentum) if nesterov else buffers
    torch._foreach_add_(params, update, alpha=-lr)


@register_fast_path(FAST_PATHS, "adam")
def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1, beta2, eps, scale, eps_hat,
         l2, decoupled) -> None:
    """In place, all parameters in one call: gdnet.optim.Adam's chain (AdamW: ``decoupled``
    is the weight decay, ``l2`` 0; Adam the other way round)."""
    amsgrad = max_exp_avg_sqs is not None
    if _fused(params):
        # the kernel reads the step count from the device, so no value crosses to the host
        steps = [torch.full((), float(step), dtype=torch.float32, device=params[0].device)] * len(params)
        fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
        fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if amsgrad else [], steps, lr=lr, beta1=beta1,
              beta2=beta2, weight_decay=decoupled or l2, eps=eps, amsgrad=amsgrad, maximize=False)
        return
    # the reference's operations, each over every parameter at once
    if l2 != 0.0:
        grads = torch._foreach_add(grads, params, alpha=l2)
    torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1.0 - beta2)
    second = exp_avg_sqs
    if amsgrad:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second = max_exp_avg_sqs
    denom = torch._foreach_sqrt(second)
    torch._foreach_mul_(denom, scale)
    torch._foreach_add_(denom, eps_hat)
    if decoupled != 0.0:
        torch._foreach_mul_(params, 1.0 - lr * decoupled)
    torch._foreach_addcdiv_(params, exp_avgs, denom, -lr)
