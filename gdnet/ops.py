"""The primitives: each class's forward works on raw arrays with ``xp`` and its VJP sits right
below it; its functional spelling follows the class, and ``@tensor_method`` on that function
makes it a Tensor operator or method too (DeZero's layout: one op, one place).

Everything else in gdnet (softmax, mse, layers) is a composition of these. A backward may give
an input the gradient of the broadcast shape: the backward pass sums it down to the input's
shape (``autograd.sum_to``), so no op undoes broadcasting itself. Inputs that are not Tensors
are constants.
``TENSOR_METHODS`` lists every operator and method Tensor gets here (autograd.py's Tensor knows
no op: importing gdnet imports this module, which attaches them).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

from .autograd import (
    Array,
    Function,
    Tensor,
    as_tensor,
    check_dtype_matches,
    check_same_device,
    dtype_is,
    dtype_name,
    is_grad_enabled,
    namespace_of,
    spelling,
)
from .fast_paths import lookup

# the functional spellings (sum, max and pow are answered by __getattr__ at the bottom), and
# the machinery of Tensor's methods
__all__ = [
    "add", "sub", "mul", "div", "pow", "power", "neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "softplus",
    "erf", "maximum", "where", "matmul", "linear", "sum", "reduce_sum", "mean", "max", "reduce_max", "reshape",
    "permute_dims", "matrix_transpose", "broadcast_to", "getitem", "concat", "stack", "unbind", "chunk", "take",
    "softmax_cross_entropy", "MaxResult", "TENSOR_METHODS", "tensor_method",
]

Scalar = (int, float)

# Tensor's operators and methods, name -> the function (or property) it is; ``tensor_method``
# fills it and attaches each to Tensor
TENSOR_METHODS: dict[str, Any] = {}


def tensor_method(*names: str, reflected: str | None = None, as_property: bool = False) -> Callable:
    """Decorator: the function below is also Tensor's method (or operator) under each of
    ``names``; ``reflected`` names the swapped operator too (``x.__radd__(y)`` is ``add(y, x)``);
    ``as_property`` makes it a property (``x.mT``)."""

    def attach(fn: Callable) -> Callable:
        entries = {name: property(fn) if as_property else fn for name in names}
        if reflected is not None:
            def swapped(self, other):
                return fn(other, self)

            swapped.__name__ = swapped.__qualname__ = reflected
            entries[reflected] = swapped
        for name, entry in entries.items():
            TENSOR_METHODS[name] = entry
            setattr(Tensor, name, entry)
        return fn

    return attach


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else ()


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a {ndim}-D tensor")
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _with_fast_path(fn: Function, name: str, a: Tensor) -> Tensor:
    """``fn(a)``, its ``fused`` set to the fast path ``name`` of the backend that owns a's array
    (None there: the reference in the class runs)."""
    fn.fused = lookup(name, a.data)
    return fn(a)


def _operand(x: Any) -> Any:
    """Python numbers stay constants; raw arrays become constant Tensors (device-checked);
    anything else (a Python list) is refused by ``as_tensor``."""
    if isinstance(x, (Tensor, bool, int)):
        return x
    if isinstance(x, float):
        return float(x)  # a NumPy float64 is a float too, but would promote float32 arrays
    return as_tensor(x, "operand")


# -- elementwise arithmetic ------------------------------------------------------------------
class Add(Function):
    def forward(self, xp, a, b):
        return a + b

    def backward(self, g):
        return g, g


@tensor_method("__add__", reflected="__radd__")
def add(a, b) -> Tensor:
    """a + b elementwise (``x + y``); either side may be a Python number (a constant).

    Shape: a and b broadcast together (the array API's rules). Dtype: the array API's
    promotion; a Python number takes the tensor's dtype.

    Raises:
        TypeError: an operand is a list or another non-array (make Tensors with gd.tensor).
        DeviceMismatchError: the operands live on two backends or devices.
    """
    return Add()(_operand(a), _operand(b))


class Sub(Function):
    def forward(self, xp, a, b):
        return a - b

    def backward(self, g):
        return g, -g if self.needs_grad[1] else None


@tensor_method("__sub__", reflected="__rsub__")
def sub(a, b) -> Tensor:
    """a - b elementwise (``x - y``); either side may be a Python number (a constant).

    Shape: a and b broadcast together. Dtype: as ``add``. Gradients: g for a, -g for b.

    Raises:
        TypeError: an operand is a list (make Tensors with gd.tensor). DeviceMismatchError: two devices.
    """
    return Sub()(_operand(a), _operand(b))


class Mul(Function):
    saves = (0, 1)

    def reads_saved(self, index):
        return self.needs_grad[1 - index]  # each side is read for the other's gradient

    def forward(self, xp, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_grad[0] else None, g * self.a if self.needs_grad[1] else None)


@tensor_method("__mul__", reflected="__rmul__")
def mul(a, b) -> Tensor:
    """a * b elementwise (``x * y``); either side may be a Python number (a constant).

    Shape: a and b broadcast together. Dtype: as ``add``.
    Gradients: g * b for a and g * a for b, so each side is saved for the other's.

    Raises:
        TypeError: an operand is a list (make Tensors with gd.tensor). DeviceMismatchError: two devices.
    """
    return Mul()(_operand(a), _operand(b))


class Div(Function):
    saves = (1,)

    def forward(self, xp, a, b):
        self.a, self.b = a, b
        self.out = a / b
        return self.out

    def backward(self, g):
        b = self.b
        return (g / b if self.needs_grad[0] else None, -g * self.out / b if self.needs_grad[1] else None)


@tensor_method("__truediv__", reflected="__rtruediv__")
def div(a, b) -> Tensor:
    """a / b elementwise, true division (``x / y``); either side may be a Python number.

    Shape: a and b broadcast together. Dtype: floating (as ``add`` for two floating operands).
    Gradients: g / b for a and -g * a / b**2 for b (from the saved quotient).

    Raises:
        TypeError: an operand is a list (make Tensors with gd.tensor). DeviceMismatchError: two devices.
    """
    return Div()(_operand(a), _operand(b))


class Neg(Function):
    def forward(self, xp, a):
        return -a

    def backward(self, g):
        return (-g,)


@tensor_method("__neg__")
def neg(a: Tensor) -> Tensor:
    """-a elementwise (``-x``).

    Shape: a (*) -> (*). Dtype: a's.
    Gradient: -g.

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return Neg()(as_tensor(a))


class Pow(Function):
    """a ** b; either side may be a constant.

    At a = 0 the VJP keeps PyTorch's rules, which give the finite answer where the formulas meet
    0 * inf: d/da = b a ** (b - 1) is 0 where b = 0 (a ** 0 is 1 for every a), and
    d/db = a ** b log(a) is 0 where a = 0 and b >= 0 (0 ** b does not move with b there).
    """

    saves = (0, 1)

    def forward(self, xp, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, g):
        xp, a, b = self.xp, self.a, self.b
        grad_a = grad_b = None
        if self.needs_grad[0]:
            if isinstance(b, Scalar):
                grad_a = g * b * a ** (b - 1) if b != 0 else xp.zeros_like(a)
            else:  # a base of 1 where b = 0: b * 1 ** -1 = 0, where 0 ** -1 would give 0 * inf
                grad_a = g * b * xp.where(b == 0, 1.0, a) ** (b - 1)
        if self.needs_grad[1]:
            if isinstance(a, Scalar) and a > 0:
                log_a = math.log(a)
            else:
                if isinstance(a, Scalar):  # 0 or negative: the array rule below (math.log raises)
                    a = xp.full(tuple(b.shape), float(a), dtype=b.dtype, device=b.device)
                # log(1) = 0 stands in for log(0) where 0 ** b is flat in b
                log_a = xp.log(xp.where((a == 0) & (b >= 0), 1.0, a))
            grad_b = g * self.out * log_a
        return grad_a, grad_b


@tensor_method("__pow__", reflected="__rpow__")
def power(a, b) -> Tensor:
    """a ** b elementwise (``x ** y``; ``gd.ops.pow``); either side may be a Python number.

    Shape: a and b broadcast together. Dtype: as ``add``. Gradients at a = 0 follow PyTorch's
    (finite where the formulas meet 0 * inf; see ``Pow``).

    Raises:
        TypeError: an operand is a list (make Tensors with gd.tensor). DeviceMismatchError: two devices.
    """
    return Pow()(_operand(a), _operand(b))


# -- elementwise functions -------------------------------------------------------------------
class Exp(Function):
    def forward(self, xp, a):
        self.out = xp.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


@tensor_method("exp")
def exp(a: Tensor) -> Tensor:
    """e ** a elementwise (``x.exp()``).

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g * exp(a), from the saved output.

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return Exp()(as_tensor(a))


class Log(Function):
    saves = (0,)

    def forward(self, xp, a):
        self.a = a
        return xp.log(a)

    def backward(self, g):
        return (g / self.a,)


@tensor_method("log")
def log(a: Tensor) -> Tensor:
    """The natural logarithm, elementwise (``x.log()``): -inf at 0, NaN below 0, as the library gives.

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g / a (inf at 0).

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return Log()(as_tensor(a))


class Sqrt(Function):
    def forward(self, xp, a):
        self.out = xp.sqrt(a)
        return self.out

    def backward(self, g):
        return (g / (2.0 * self.out),)


@tensor_method("sqrt")
def sqrt(a: Tensor) -> Tensor:
    """The square root, elementwise (``x.sqrt()``); NaN below 0.

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g / (2 sqrt(a)), from the saved output (inf at 0).

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return Sqrt()(as_tensor(a))


class Tanh(Function):
    """tanh(a); ``fused``, set by ``tanh``, is the arrays' backend's ``tanh_backward`` fast path."""

    fused = None

    def forward(self, xp, a):
        self.out = xp.tanh(a)
        return self.out

    def backward(self, g):
        if self.fused is not None:
            return (self.fused(g, self.out),)
        return (g * (1.0 - self.out * self.out),)


@tensor_method("tanh")
def tanh(a: Tensor) -> Tensor:
    """tanh(a) elementwise (``x.tanh()``); the backward uses the arrays' backend's
    ``tanh_backward`` fast path where it has one.

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g * (1 - tanh(a)**2), from the saved output.

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return _with_fast_path(Tanh(), "tanh_backward", as_tensor(a))


def _sigmoid(xp: Any, a: Array) -> Array:
    # exp(-|a|) never overflows; the two branches are the same function
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Sigmoid(Function):
    """1 / (1 + exp(-a)); ``fused``, set by ``sigmoid``, is the arrays' backend's ``sigmoid`` fast
    path (forward and backward)."""

    fused = None

    def forward(self, xp, a):
        self.out = _sigmoid(xp, a) if self.fused is None else self.fused.forward(a)
        return self.out

    def backward(self, g):
        if self.fused is not None:
            return (self.fused.backward(g, self.out),)
        return (g * self.out * (1.0 - self.out),)


@tensor_method("sigmoid")
def sigmoid(a: Tensor) -> Tensor:
    """1 / (1 + exp(-a)) elementwise (``x.sigmoid()``), without overflow for large |a|; the
    arrays' backend's ``sigmoid`` fast path where it has one.

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g * s * (1 - s), s the saved output.

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return _with_fast_path(Sigmoid(), "sigmoid", as_tensor(a))


class Softplus(Function):
    """log(1 + exp(a)), as max(a, 0) + log1p(exp(-|a|)): no overflow, no loss of tiny values."""

    saves = (0,)

    def forward(self, xp, a):
        self.a = a
        return xp.maximum(a, 0.0) + xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, g):
        return (g * _sigmoid(self.xp, self.a),)


def softplus(a: Tensor) -> Tensor:
    """log(1 + exp(a)) elementwise, computed without overflow or loss of tiny values (see
    ``nn.functional.softplus`` for beta and threshold).

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g * sigmoid(a).

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return Softplus()(as_tensor(a))


# erf(x) = x * P1(y) for |x| <= 1.5, with y = 2 x^2 / 1.5^2 - 1 in [-1, 1];
# erf(x) = sign(x) * (1 - exp(-x^2) * P2(y)) for |x| > 1.5, with y = (2 / |x| - 1/6 - 1/1.5) / (1/1.5 - 1/6).
# Least-squares Chebyshev fits (400 nodes, values from mpmath at 40 digits) of erf(x)/x in x^2 and of
# exp(x^2) erfc(x) in 1/x on [1.5, 6], written as powers of y; erf(x) rounds to 1 in float64 beyond 6.
# Largest relative error over the float64 line: 1.3e-15.
_ERF_SPLIT, _ERF_END = 1.5, 6.0
_ERF_P1 = (
    0.8168361747839196, -0.22525254703530037, 0.06590879382585171, -0.01628751368588784,
    0.0033850641464756243, -0.0006015929078618251, 9.302926027356742e-05, -1.2707918085504037e-05,
    1.5529326041843284e-06, -1.715640300915738e-07, 1.728392345674669e-08, -1.6003849433298438e-09,
    1.3981208597211252e-10, -1.1101684149464546e-11,
)
_ERF_P2 = (
    0.2184987345370408, 0.11460274749753784, -0.011749767915070762, -8.58023267731918e-05,
    0.0004204258940485091, -0.00011583014919871729, 1.374137596325897e-05, 2.69221912649361e-06,
    -2.0590278659804566e-06, 6.366727939564525e-07, -1.0109568198002313e-07, -1.2519962484207225e-08,
    1.7467266042117323e-08, -7.335713133172256e-09, 8.917361472351942e-10, 2.690771700585643e-10,
)


def _horner(y: Array, coefficients: Sequence[float]) -> Array:
    out = y * coefficients[-1] + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        out = out * y + c
    return out


class Erf(Function):
    """The error function (the array API has none): two polynomial pieces, accurate to float64.

    Both pieces run on every element, each on inputs clipped into its own range, and where()
    picks; the VJP is exact: 2 / sqrt(pi) * exp(-a^2).
    """

    saves = (0,)

    def forward(self, xp, a):
        self.a = a
        magnitude = xp.abs(a)
        inner = xp.minimum(magnitude, _ERF_SPLIT)
        small = a * _horner(inner * inner * (2.0 / _ERF_SPLIT**2) - 1.0, _ERF_P1)
        outer = xp.clip(magnitude, _ERF_SPLIT, _ERF_END)
        low, high = 1.0 / _ERF_END, 1.0 / _ERF_SPLIT
        y = (2.0 / outer - (low + high)) / (high - low)
        large = xp.sign(a) * (1.0 - xp.exp(-outer * outer) * _horner(y, _ERF_P2))
        return xp.where(magnitude <= _ERF_SPLIT, small, large)

    def backward(self, g):
        return (g * (2.0 / math.sqrt(math.pi)) * self.xp.exp(-self.a * self.a),)


def erf(a: Tensor) -> Tensor:
    """The error function, 2 / sqrt(pi) * integral of exp(-t^2) from 0 to a, elementwise (the
    array API has none: two polynomial pieces, accurate to float64).

    Shape: a (*) -> (*). Dtype: a's (floating).
    Gradient: g * 2 / sqrt(pi) * exp(-a**2), exact.

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    return Erf()(as_tensor(a))


class Relu(Function):
    """max(a, 0); ``fused_forward`` and ``fused``, set by ``relu``, are the arrays' backend's
    ``relu`` and ``relu_backward`` fast paths."""

    fused = fused_forward = None

    def forward(self, xp, a):
        self.out = xp.maximum(a, 0.0) if self.fused_forward is None else self.fused_forward(a)
        return self.out

    def backward(self, g):
        if self.fused is not None:
            return (self.fused(g, self.out),)
        # the derivative at 0 is taken as 0, as PyTorch does; a 0/1 mask multiplies
        # several times faster than where() on NumPy
        return (g * self.xp.astype(self.out > 0, g.dtype),)


@tensor_method("relu")
def relu(a: Tensor) -> Tensor:
    """max(a, 0) elementwise (``x.relu()``); the gradient at 0 is 0, as PyTorch's.

    Shape: a (*) -> (*). Dtype: a's.
    Gradient: g where a > 0, else 0.

    Raises:
        TypeError: a is a list or another non-array (make Tensors with gd.tensor).
    """
    a = as_tensor(a)
    fn = Relu()
    fn.fused_forward = lookup("relu", a.data)
    return _with_fast_path(fn, "relu_backward", a)


class Maximum(Function):
    """Elementwise max; at ties each side gets half the gradient, and a side gets none only where
    it is smaller, so a NaN (which is the maximum) passes the gradient to both sides (all as
    torch.maximum)."""

    saves = (0, 1)

    def forward(self, xp, a, b):
        self.a, self.b = a, b
        return xp.maximum(a, b)

    def backward(self, g):
        xp, a, b = self.xp, self.a, self.b
        half = g * 0.5
        return (
            xp.where(a < b, 0.0, xp.where(a == b, half, g)) if self.needs_grad[0] else None,
            xp.where(b < a, 0.0, xp.where(a == b, half, g)) if self.needs_grad[1] else None,
        )


def maximum(a, b) -> Tensor:
    """The larger of a and b elementwise (torch.maximum): tied positions share the gradient,
    and a NaN, which is the maximum, passes it to both sides.

    Shape: a and b broadcast together. Dtype: as ``add``.

    Raises:
        TypeError: an operand is a list (make Tensors with gd.tensor). DeviceMismatchError: two devices.
    """
    return Maximum()(_operand(a), _operand(b))


class Where(Function):
    """where(condition, a, b); the condition is a constant boolean array."""

    saves = (0,)

    def forward(self, xp, condition, a, b):
        self.condition = condition
        return xp.where(condition, a, b)

    def backward(self, g):
        xp, cond = self.xp, self.condition
        return (
            None,
            xp.where(cond, g, 0.0) if self.needs_grad[1] else None,
            xp.where(cond, 0.0, g) if self.needs_grad[2] else None,
        )


def where(condition, a, b) -> Tensor:
    """Elementwise ``a`` where ``condition`` holds, else ``b``; the condition is not differentiated.

    Shape: condition, a and b broadcast together. Dtype: condition bool; a and b as ``add``.

    Raises:
        TypeError: ``condition`` or an operand is a list (make Tensors with gd.tensor).
        DeviceMismatchError: the condition or an operand lives on another device.
    """
    cond = as_tensor(condition, "condition")  # a Tensor, so its device is checked
    return Where()(cond, _operand(a), _operand(b))


# -- linear algebra --------------------------------------------------------------------------
class Matmul(Function):
    saves = (0, 1)
    reads_saved = Mul.reads_saved

    def forward(self, xp, a, b):
        self.a, self.b = a, b
        return xp.matmul(a, b)

    def backward(self, g):
        xp, a, b = self.xp, self.a, self.b
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if self.needs_grad[0] else None, g * a if self.needs_grad[1] else None)
        # promote 1-D operands to matrices, as matmul does, then drop the added axis again (batch
        # axes that broadcast are summed away by the backward pass)
        a2 = xp.expand_dims(a, axis=0) if a.ndim == 1 else a
        b2 = xp.expand_dims(b, axis=-1) if b.ndim == 1 else b
        g2 = xp.expand_dims(g, axis=-2) if a.ndim == 1 else g
        g2 = xp.expand_dims(g2, axis=-1) if b.ndim == 1 else g2
        grad_a = grad_b = None
        if self.needs_grad[0]:
            grad_a = xp.matmul(g2, xp.matrix_transpose(b2))
            grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
        if self.needs_grad[1]:
            grad_b = xp.matmul(xp.matrix_transpose(a2), g2)
            grad_b = grad_b[..., 0] if b.ndim == 1 else grad_b
        return grad_a, grad_b


@tensor_method("__matmul__", reflected="__rmatmul__")
def matmul(a, b) -> Tensor:
    """a @ b (``x @ y``), with NumPy's rules: 1-D operands are promoted to matrices and the
    added axis dropped again, batch axes broadcast.

    Shape: a (..., n, k) and b (..., k, m) -> (..., n, m); a (k,) or b (k,) drop that axis.
    Dtype: one floating dtype for both, as PyTorch (float32 @ float64 is refused, not promoted).

    Raises:
        TypeError: the dtypes differ, or an operand is a list. DeviceMismatchError: two devices.
    """
    a, b = as_tensor(a, "matmul operand"), as_tensor(b, "matmul operand")
    check_same_device([a.data, b.data])  # dtypes of two libraries do not compare
    if a.data.dtype != b.data.dtype:
        raise TypeError(
            f"matmul: operands have dtypes {dtype_name(a.data.dtype)} and {dtype_name(b.data.dtype)}; expected one "
            "dtype (convert one with .astype(...))"
        )
    return Matmul()(a, b)


class Linear(Function):
    """Fused x @ W.mT + b: x (..., in), W (out, in), b (out,) or absent -> (..., out).

    ``fused``, set by ``linear``, is the arrays' backend's ``linear`` fast path (the bias added
    inside the matrix product, as torch.addmm), used for a 2-D input with a bias; None uses the
    code below."""

    fused = None

    saves = (0, 1)
    reads_saved = Mul.reads_saved

    def forward(self, xp, x, weight, bias=None):
        self.x, self.weight = x, weight
        if self.fused is not None and bias is not None and x.ndim == 2:
            return self.fused(x, weight, bias)
        # xp.matmul, not the operator: a backend may run large products its own way (the numpy
        # backend splits them over its threads)
        y = xp.matmul(x, xp.matrix_transpose(weight))
        if bias is not None:
            y += bias  # y is new, so adding in place saves an allocation
        return y

    def backward(self, g):
        xp, x, w = self.xp, self.x, self.weight
        grad_x = xp.matmul(g, w) if self.needs_grad[0] else None
        grad_w = grad_b = None
        if x.ndim > 2:  # fold batch dimensions into one
            x = xp.reshape(x, (-1, x.shape[-1]))
            g = xp.reshape(g, (-1, g.shape[-1]))
        if self.needs_grad[1]:
            grad_w = xp.matmul(xp.matrix_transpose(g), x) if x.ndim == 2 else g[:, None] * x[None, :]
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            grad_b = xp.sum(g, axis=0) if g.ndim == 2 else g
        return grad_x, grad_w, grad_b


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.mT + bias, fused: x (..., in), weight (out, in), bias (out,) -> (..., out).

    The arrays' backend's ``linear`` fast path (bias inside the product) serves a 2-D input
    with a bias where it has one.

    Shape: see above. Dtype: x's must be the weight's (PyTorch's rule).

    Raises:
        ValueError: x is 0-d or its last axis is not ``in``.
        TypeError: x is not a Tensor or array, or its dtype is not the weight's.
    """
    x = as_tensor(x)
    if x.data.ndim == 0:
        raise ValueError(
            f"linear: input is 0-d (a single number); expected at least 1-D (..., {weight.shape[-1]}), e.g. "
            f"x.reshape(1, {weight.shape[-1]}) for one sample"
        )
    if x.data.dtype is not weight.data.dtype:
        check_dtype_matches("linear", x, weight)
    if x.data.shape[-1] != weight.data.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}); expected "
            f"{weight.shape[-1]} (weight shape {weight.shape})"
        )
    fn = Linear()
    if bias is None:
        return fn(x, weight)
    fn.fused = lookup("linear", x.data)
    return fn(x, weight, bias)


# -- reductions ------------------------------------------------------------------------------
# reductions take the array API's axis/keepdims or PyTorch's dim/keepdim (one of each pair)
def _reduction(kind: type, name: str, a: Any, axis, keepdims, dim, keepdim) -> Tensor:
    axis = spelling(name, axis, dim)
    keepdims = spelling(name, keepdims, keepdim, False, ("keepdims", "keepdim"))
    return kind(axis, keepdims)(as_tensor(a))


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, xp, a):
        self.shape = tuple(a.shape)
        self.axes = _axes(self.axis, a.ndim)
        return xp.sum(a, axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        xp = self.xp
        g = xp.reshape(g, _keepdims_shape(self.shape, self.axes))
        return (xp.broadcast_to(g, self.shape),)


@tensor_method("sum")
def reduce_sum(a: Tensor, axis=None, keepdims: bool | None = None, *, dim=None, keepdim: bool | None = None
               ) -> Tensor:
    """The sum over ``axis`` (or ``dim``: an int, a tuple, or None for all axes), keeping the
    reduced axes with ``keepdims`` (or ``keepdim``): ``gd.ops.sum`` and ``x.sum()``.

    Shape: a (*) -> a's shape without the reduced axes (with 1s there if keepdims). Dtype: a's.

    Raises:
        ValueError: an axis out of range. TypeError: both axis and dim (or keepdims and keepdim).
    """
    return _reduction(Sum, "sum", a, axis, keepdims, dim, keepdim)


class Mean(Sum):
    def forward(self, xp, a):
        out = super().forward(xp, a)
        self.count = math.prod(self.shape[i] for i in self.axes)
        return out / float(self.count)

    def backward(self, g):
        return super().backward(g / float(self.count))


@tensor_method("mean")
def mean(a: Tensor, axis=None, keepdims: bool | None = None, *, dim=None, keepdim: bool | None = None) -> Tensor:
    """The mean over ``axis`` (or ``dim``; default all axes), keeping the reduced axes with
    ``keepdims`` (or ``keepdim``): ``x.mean()``.

    Shape: as ``sum``. Dtype: a's (floating).

    Raises:
        ValueError: an axis out of range. TypeError: both axis and dim (or keepdims and keepdim).
    """
    return _reduction(Mean, "mean", a, axis, keepdims, dim, keepdim)


class Max(Function):
    """Max over axes, with the gradient of torch.max() over all values: tied maxima share it
    equally, and where the values hold a NaN (so the maximum is NaN) it goes to the NaN positions
    only (torch.amax would make every gradient entry of that slice NaN)."""

    saves = (0,)

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, xp, a):
        self.axes = _axes(self.axis, a.ndim)
        kept = xp.max(a, axis=self.axes, keepdims=True)
        self.a, self.kept = a, kept  # the positions are found in backward: a detached max needs none
        if self.keepdims:
            return kept
        return xp.reshape(kept, tuple(n for i, n in enumerate(a.shape) if i not in self.axes))

    def backward(self, g):
        xp, a, kept = self.xp, self.a, self.kept
        # max() is NaN wherever its values hold one, and NaN == NaN is false: isnan finds those
        is_max = xp.astype((a == kept) | xp.isnan(a), g.dtype)
        count = xp.sum(is_max, axis=self.axes, keepdims=True)
        return (is_max * (xp.reshape(g, tuple(kept.shape)) / count),)


def reduce_max(a: Tensor, axis=None, keepdims: bool | None = None, *, dim=None, keepdim: bool | None = None
               ) -> Tensor:
    """The maximum of ``a`` over ``axis`` (or ``dim``: an int, a tuple, or None for all axes),
    keeping the reduced axes with ``keepdims`` (or ``keepdim``); values only, as torch.amax:
    ``gd.ops.max`` (``x.max(dim=...)`` also gives the indices).

    Gradient as torch.max: tied maxima share it equally (torch.max over a dim would pick one);
    where the values hold a NaN, the maximum is NaN and the gradient goes to the NaN positions
    only (torch.amax, sharing among the positions equal to the maximum, finds none and gives NaN
    everywhere in that slice).

    Shape: as ``sum``. Dtype: a's.

    Raises:
        ValueError: an axis out of range. TypeError: both axis and dim (or keepdims and keepdim).
    """
    return _reduction(Max, "max", a, axis, keepdims, dim, keepdim)


class MaxResult(NamedTuple):
    """``Tensor.max(dim=...)``: the largest values and their indices (torch.return_types.max)."""

    values: Tensor
    indices: Tensor


@tensor_method("max")
def _max_method(self: Tensor, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """The largest values over ``axis``, as the array API's max and torch.amax (ties share
    the gradient). With ``dim``, PyTorch's spelling, PyTorch's answer: the pair
    ``(values, indices)`` along that one axis, so ``values, indices = x.max(dim=1)`` works."""
    values = reduce_max(self, axis, keepdims, dim=dim, keepdim=keepdim)
    if dim is None:
        return values
    keep = bool(spelling("max", keepdims, keepdim, False, ("keepdims", "keepdim")))
    return MaxResult(values, Tensor(self.xp.argmax(self.data, axis=dim, keepdims=keep)))


# -- shapes and indexing ---------------------------------------------------------------------
class Reshape(Function):
    view = True

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, xp, a):
        self.in_shape = tuple(a.shape)
        return xp.reshape(a, self.shape)

    def backward(self, g):
        return (self.xp.reshape(g, self.in_shape),)


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    """``a`` with the same values in ``shape`` (one entry may be -1: inferred), ``x.reshape(...)``.

    Shape: a (*) -> shape, of the same size. Dtype: a's. Unrecorded (a plain reshape of the
    array) when no gradient is wanted.

    Raises:
        TypeError: a is a list. The library's error (ValueError in NumPy) for a shape of
            another size.
    """
    a = as_tensor(a)
    if not (a.requires_grad and is_grad_enabled()):
        # nothing to record (a batch of data on its way into the first layer): skip the op
        return Tensor(a.xp.reshape(a.data, tuple(shape)))
    return Reshape(shape)(a)


@tensor_method("reshape")
def _reshape_method(self: Tensor, *shape) -> Tensor:
    """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return reshape(self, shape)


class PermuteDims(Function):
    view = True

    def __init__(self, axes):
        self.axes = tuple(axes)

    def forward(self, xp, a):
        if sorted(axis % a.ndim for axis in self.axes) != list(range(a.ndim)):
            raise ValueError(f"permute_dims axes {self.axes} are not a permutation of {a.ndim} axes")
        return xp.permute_dims(a, self.axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = i
        return (self.xp.permute_dims(g, tuple(inverse)),)


def permute_dims(a: Tensor, axes: Sequence[int]) -> Tensor:
    """``a`` with its axes in the order ``axes`` (torch.permute; ``x.permute(...)``).

    Shape: a (d0, ..., dn) -> (d[axes[0]], ..., d[axes[n]]). Dtype: a's.

    Raises:
        ValueError: ``axes`` is not a permutation of a's axes. TypeError: a is a list.
    """
    return PermuteDims(axes)(as_tensor(a))


@tensor_method("permute")
def _permute_method(self: Tensor, *axes) -> Tensor:
    """``x.permute(2, 0, 1)`` or ``x.permute((2, 0, 1))``."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return permute_dims(self, axes)


@tensor_method("mT", as_property=True)
def matrix_transpose(a: Tensor) -> Tensor:
    """The last two axes swapped (the array API's matrix_transpose; PyTorch's ``x.mT``).

    Shape: a (..., m, n) -> (..., n, m). Dtype: a's.

    Raises:
        TypeError: a is a list. ValueError: a has fewer than two axes.
    """
    a = as_tensor(a)
    return permute_dims(a, tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))


@tensor_method("T", as_property=True)
def _transpose(self: Tensor) -> Tensor:
    """``x.T`` of a 2-D tensor (PyTorch deprecates .T on other ranks; .mT is the general one)."""
    if self.ndim != 2:
        raise ValueError(f".T is for 2-D tensors; got {self.ndim}-D (use .mT or permute)")
    return matrix_transpose(self)


class BroadcastTo(Function):
    view = True

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, xp, a):
        return xp.broadcast_to(a, self.shape)

    def backward(self, g):
        return (g,)  # summed back to the input's shape by the backward pass


def broadcast_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    """``a`` repeated along axes of size 1 (and new leading axes) up to ``shape``, without copying.

    Shape: a (*) -> shape, which a broadcasts to. Dtype: a's.

    Raises:
        TypeError: a is a list. The library's error (ValueError in NumPy) where a does not
            broadcast to shape.
    """
    return BroadcastTo(shape)(as_tensor(a))


class GetItem(Function):
    """Basic indexing (integers, slices, ellipsis); backward writes into zeros by setitem."""

    view = True

    def __init__(self, key):
        # the standard leaves x[i] on an N-D array unspecified; a trailing ... makes it x[i, ...]
        key = key if isinstance(key, tuple) else (key,)
        self.key = key if any(k is Ellipsis for k in key) else key + (Ellipsis,)

    def forward(self, xp, a):
        self.shape, self.dtype, self.device = tuple(a.shape), a.dtype, a.device
        return a[self.key]

    def backward(self, g):
        grad = self.xp.zeros(self.shape, dtype=self.dtype, device=self.device)
        key = tuple(k for k in self.key if k is not None)  # setitem takes no new axes
        if len(key) != len(self.key):
            g = self.xp.reshape(g, tuple(grad[key].shape))
        grad[key] = g
        return (grad,)


@tensor_method("__getitem__")
def getitem(a: Tensor, key) -> Tensor:
    """``a[key]`` (``x[...]``): integers, slices, ``...`` and None are one view primitive; a
    1-D integer array (or list) key is ``take(a, key, axis=0)``.

    Shape: NumPy's basic indexing. Dtype: a's.

    Raises:
        TypeError: a boolean mask (use gd.where(mask, x, 0)) or arrays inside a tuple key (use
            gd.take). DeviceMismatchError: an index array on another device.
    """
    if isinstance(key, list):  # x[[0, 0, 1]]: a setitem backward would drop repeated rows
        key = a.xp.asarray(key, device=a.device)
    if isinstance(key, tuple) and any(isinstance(k, list) or len(getattr(k, "shape", ())) for k in key):
        raise TypeError(
            "indexing with arrays inside a tuple is not differentiable here; use gd.take(x, indices, axis)"
        )
    if isinstance(key, Tensor) or hasattr(key, "dtype"):
        idx = key.data if isinstance(key, Tensor) else key
        check_same_device([a.data, idx])  # before reading its dtype, which may be foreign
        if a.xp.isdtype(idx.dtype, "bool"):
            raise TypeError("boolean-mask indexing is not differentiable here; use gd.where(mask, x, 0)")
        return take(a, idx, axis=0)
    return GetItem(key)(a)


class Concat(Function):
    """concat(arrays, axis), or stack(arrays, axis) with ``new_axis``; the VJP slices the gradient."""

    def __init__(self, axis: int = 0, new_axis: bool = False):
        self.axis, self.new_axis = axis, new_axis

    def forward(self, xp, *arrays):
        if self.new_axis:
            self.axis %= arrays[0].ndim + 1
            return xp.stack(arrays, axis=self.axis)
        self.axis %= arrays[0].ndim
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp.concat(arrays, axis=self.axis)

    def backward(self, g):
        lead = (slice(None),) * self.axis
        if self.new_axis:
            keys = [lead + (i, Ellipsis) for i in range(len(self.needs_grad))]
        else:
            starts = [0]
            for size in self.sizes:
                starts.append(starts[-1] + size)
            keys = [lead + (slice(start, stop), Ellipsis) for start, stop in zip(starts, starts[1:])]
        return tuple(g[key] if need else None for key, need in zip(keys, self.needs_grad))


def _joinable(name: str, tensors: Sequence[Any], axis: int, new_axis: bool) -> list:
    tensors = [_operand(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{name} needs at least one tensor; got none")
    shapes = [_shape(t) for t in tensors]
    ndim = len(shapes[0])
    if not -(ndim + new_axis) <= axis < ndim + new_axis:
        raise ValueError(f"{name}: axis {axis} is out of range for {ndim}-D tensors")
    kept = [s if new_axis else s[: axis % ndim] + s[axis % ndim + 1 :] for s in shapes]
    if any(len(s) != ndim for s in shapes) or any(k != kept[0] for k in kept):
        what = "the same shape" if new_axis else f"the same shape except along axis {axis}"
        raise ValueError(f"{name}: tensors must have {what}; got shapes {shapes}")
    return tensors


def concat(tensors: Sequence[Tensor], axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Tensors joined along an existing ``axis`` (or ``dim``; default 0), as torch.cat.

    Shape: (..., n_i, ...) each -> (..., sum of n_i, ...). Dtype: the array API's promotion.

    Raises:
        ValueError: no tensors, an axis out of range, or shapes that differ off that axis.
        DeviceMismatchError: tensors on two devices.
    """
    axis = spelling("concat", axis, dim, 0)
    return Concat(axis)(*_joinable("concat", tensors, axis, False))


def stack(tensors: Sequence[Tensor], axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Tensors of one shape joined along a new ``axis`` (or ``dim``; default 0), as torch.stack.

    Shape: k tensors of shape (*) -> (*) with k inserted at ``axis``. Dtype: as ``concat``.

    Raises:
        ValueError: no tensors, an axis out of range, or shapes that differ.
        DeviceMismatchError: tensors on two devices.
    """
    axis = spelling("stack", axis, dim, 0)
    return Concat(axis, new_axis=True)(*_joinable("stack", tensors, axis, True))


class Split(Function):
    """The source of ``unbind`` and ``chunk``: one primitive with several outputs.

    A Function has one output, so the pieces are ``Piece`` ops hanging off this one's 0-d
    output, a token without values. The graph runs every piece's backward before this one's:
    each writes its gradient into one buffer here, which this backward hands on whole. Slicing
    by ``GetItem`` instead would give each piece a zero-filled gradient of the full input, so a
    recurrent layer's backward would cost the square of its sequence length.
    """

    view = True  # the token stands for the input its pieces are views of

    def forward(self, xp, a):
        self.a, self.grad = a, None
        self.token = xp.zeros((), dtype=a.dtype, device=a.device)
        return self.token

    def piece(self, token: Tensor, key: tuple) -> Tensor:
        return Piece(self, key)(token)

    def backward(self, g):
        return (self.grad,)


class Piece(Function):
    """``source.a[key]``, one output of a ``Split``; its gradient goes into the split's buffer."""

    view = True

    def __init__(self, source: Split, key: tuple):
        self.source, self.key = source, key

    def forward(self, xp, token):
        return self.source.a[self.key]

    def backward(self, g):
        source = self.source
        if source.grad is None:
            source.grad = self.xp.zeros(source.a.shape, dtype=g.dtype, device=g.device)
        source.grad[self.key] = g
        return (source.token,)


def _split(a: Tensor, axis: int, keys: list) -> list[Tensor]:
    split = Split()
    token = split(a)
    lead = (slice(None),) * (axis % a.ndim)
    return [split.piece(token, lead + (key, Ellipsis)) for key in keys]


def unbind(a: Tensor, axis: int | None = None, *, dim: int | None = None) -> list[Tensor]:
    """The slices of ``a`` along ``axis`` (or ``dim``; default 0), that axis removed, as
    torch.unbind; their backward fills one gradient buffer (see ``Split``).

    Shape: a (..., k, ...) -> a list of k tensors (..., ...). Dtype: a's.

    Raises:
        ValueError: the axis is out of range. TypeError: a is a list.
    """
    a, axis = as_tensor(a), spelling("unbind", axis, dim, 0)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"unbind: axis {axis} is out of range for a {a.ndim}-D tensor")
    return _split(a, axis, list(range(a.shape[axis])))


def chunk(a: Tensor, chunks: int, axis: int | None = None, *, dim: int | None = None) -> list[Tensor]:
    """``a`` cut into ``chunks`` equal parts along ``axis`` (or ``dim``; default 0), as torch.chunk
    (whose parts may be unequal: here the axis must divide evenly).

    Shape: a (..., k, ...) -> a list of ``chunks`` tensors (..., k / chunks, ...). Dtype: a's.

    Raises:
        ValueError: the axis is out of range, or its length does not split into ``chunks``.
    """
    a, axis = as_tensor(a), spelling("chunk", axis, dim, 0)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"chunk: axis {axis} is out of range for a {a.ndim}-D tensor")
    length = a.shape[axis]
    if chunks <= 0 or length % chunks:
        raise ValueError(f"chunk: axis {axis} of length {length} does not split into {chunks} equal parts")
    size = length // chunks
    return _split(a, axis, [slice(i * size, (i + 1) * size) for i in range(chunks)])


class Take(Function):
    """take(a, indices, axis) with 1-D integer indices; negative ones count from the end.

    The array API has no scatter-add, so the VJP is a one-hot matrix product: every index
    row of the one-hot matrix sends its gradient back to the position it was taken from.
    """

    saves = (1,)

    def __init__(self, axis: int = 0):
        self.axis = axis

    def forward(self, xp, a, indices):
        n = a.shape[self.axis]
        if dtype_is(xp, indices.dtype, "signed integer"):
            # made positions in [0, n) once: the one-hot matrix of the VJP matches no negative
            # index, and the standard's take leaves negative indices unspecified
            indices = xp.where(indices < 0, indices + n, indices)
        self.indices, self.n, self.ndim = indices, n, a.ndim
        return xp.take(a, indices, axis=self.axis)

    def backward(self, g):
        xp = self.xp
        positions = xp.arange(self.n, device=g.device)
        one_hot = xp.astype(self.indices[:, None] == positions[None, :], g.dtype)  # (k, n)
        moved = xp.moveaxis(g, self.axis, -1)  # (..., k)
        return (xp.moveaxis(xp.matmul(moved, one_hot), -1, self.axis), None)


def take(a: Tensor, indices, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Entries of ``a`` at integer ``indices`` along ``axis`` (or ``dim``; default 0), as numpy.take;
    negative indices count from the end. The backward is a one-hot product (no scatter in the
    array API), so repeated indices add up their gradients.

    Shape: the indices' shape replaces that axis: a (3, 2) and indices (2, 2) along axis 0 ->
    (2, 2, 2). Dtype: a's; indices integer (a Tensor, an array or a list).

    Raises:
        ValueError: the axis is out of range. DeviceMismatchError: indices on another device.
    """
    a, axis = as_tensor(a), spelling("take", axis, dim, 0)
    idx = indices.data if isinstance(indices, Tensor) else indices
    if not hasattr(idx, "shape"):
        idx = a.xp.asarray(idx, device=a.device)
    if idx.ndim == 1:
        return Take(axis)(a, Tensor(idx))  # a Tensor, so its device is checked against a's
    axis = _axes(axis, a.ndim)[0]
    flat = Take(axis)(a, Tensor(a.xp.reshape(idx, (-1,))))
    return reshape(flat, a.shape[:axis] + tuple(idx.shape) + a.shape[axis + 1 :])


# -- fused loss ------------------------------------------------------------------------------
class SoftmaxCrossEntropy(Function):
    """Cross-entropy of softmax(logits) against class indices or class probabilities.

    logits (N, C); target (N,) integer classes or (N, C) probabilities -> per-sample (N,),
    or their mean or sum. VJP: (softmax * sum(p) - p) times the incoming gradient, which is
    softmax - one_hot for class indices.
    """

    saves = (1,)

    def __init__(self, reduction: str = "mean"):
        self.reduction = reduction

    def forward(self, xp, logits, target):
        self.by_index = dtype_is(xp, target.dtype, "integral")
        self.target = target
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        probs = xp.exp(shifted)
        total = xp.sum(probs, axis=1, keepdims=True)
        probs /= total  # probs is new: normalising in place saves an allocation
        self.probs = probs
        if self.by_index:
            # integer-array indexing picks each row's target score in one gather
            rows = xp.arange(logits.shape[0], device=logits.device)
            per_sample = xp.log(total[:, 0]) - shifted[rows, target]
        else:
            self.log_probs = shifted - xp.log(total)
            # a class of target probability 0 adds nothing, even where its log-probability is -inf
            per_sample = -xp.sum(target * xp.where(target == 0, 0.0, self.log_probs), axis=1)
        if self.reduction == "none":
            return per_sample
        loss = xp.sum(per_sample)
        return loss / float(logits.shape[0]) if self.reduction == "mean" else loss

    def backward(self, g):
        xp, target, probs = self.xp, self.target, self.probs
        if self.reduction == "none":
            g = g[:, None]
        elif self.reduction == "mean":
            g = g / float(probs.shape[0])
        if self.by_index:
            classes = xp.arange(probs.shape[1], device=probs.device)
            grad = probs - xp.astype(target[:, None] == classes[None, :], probs.dtype)
            grad *= g
            return (grad, None)
        grad_logits = (probs * xp.sum(target, axis=1, keepdims=True) - target) * g if self.needs_grad[0] else None
        grad_target = -self.log_probs * g if self.needs_grad[1] else None
        return grad_logits, grad_target


class FusedSoftmaxCrossEntropy(Function):
    """SoftmaxCrossEntropy against class indices by a backend's ``softmax_cross_entropy`` fast
    path (``fused``): the same numbers, in fewer array operations (tested equal)."""

    def __init__(self, fused, reduction: str = "mean"):
        self.fused, self.reduction = fused, reduction

    def forward(self, xp, logits, labels):
        self.labels = labels
        loss, self.saved = self.fused.forward(logits, labels, self.reduction)
        return loss

    def backward(self, g):
        return (self.fused.backward(self.saved, self.labels, g, self.reduction), None)


def softmax_cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """The fused softmax cross-entropy primitive under ``nn.functional.cross_entropy``,
    which checks its arguments first (this spelling checks nothing); the arrays' backend's
    ``softmax_cross_entropy`` fast path serves class-index targets where it has one.

    Shape: logits (N, C); target (N,) class indices or (N, C) probabilities -> () for
    "mean" or "sum", (N,) for "none". Dtype: logits floating; indices integer.

    Raises:
        nothing of its own: out-of-range labels give wrong values here (cross_entropy refuses
        them).
    """
    fused = lookup("softmax_cross_entropy", logits.data)
    if fused is not None:  # the arrays' backend has its own, equal to SoftmaxCrossEntropy's for class indices
        labels = target.data if isinstance(target, Tensor) else target
        if dtype_is(namespace_of(logits.data), labels.dtype, "integral"):
            return FusedSoftmaxCrossEntropy(fused, reduction)(logits, target)
    return SoftmaxCrossEntropy(reduction)(logits, target)


# The public names gd.ops.sum, gd.ops.max and gd.ops.pow (the array API's and PyTorch's) would
# shadow Python's builtins in this module; the module answers them here instead, so its own code
# reads sum(), max() and pow() as Python means them.
_BUILTIN_NAMES = {"sum": reduce_sum, "max": reduce_max, "pow": power}


def __getattr__(name: str) -> Any:
    try:
        return _BUILTIN_NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_BUILTIN_NAMES])
