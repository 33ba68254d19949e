"""Recurrent layers: RNN, LSTM, GRU and their one-step cells, with PyTorch's names and layouts.

A layer runs its cell once per time step through the ordinary graph, so gradients flow back
through time like through any other composition. The input projections of every time step are
one matrix product before the loop; inside it only the hidden-to-hidden product and the gates
remain. ``ops.unbind`` hands the loop its steps without a quadratic backward.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from .. import ops
from ..autograd import Tensor, as_tensor, check_dtype_matches, dtype_is, dtype_name
from . import init
from .dropout import dropout
from .module import Module, check_sizes, new_parameter

State = Any  # a Tensor h, or a pair (h, c) for LSTM


# -- one time step: input projection (x W_ih^T + b_ih) and state in, new state out ------------------
def _rnn_tanh_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    return ops.tanh(x_proj + ops.linear(h, w_hh, b_hh))


def _rnn_relu_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    return ops.relu(x_proj + ops.linear(h, w_hh, b_hh))


def _lstm_step(x_proj: Tensor, state: tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor | None):
    h, c = state
    i, f, g, o = ops.chunk(x_proj + ops.linear(h, w_hh, b_hh), 4, axis=-1)  # PyTorch's gate order
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def _gru_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    x_r, x_z, x_n = ops.chunk(x_proj, 3, axis=-1)
    h_r, h_z, h_n = ops.chunk(ops.linear(h, w_hh, b_hh), 3, axis=-1)
    r = ops.sigmoid(x_r + h_r)
    z = ops.sigmoid(x_z + h_z)
    n = ops.tanh(x_n + r * h_n)  # the reset gate scales W_hn h + b_hn, as in PyTorch
    return n + z * (h - n)  # (1 - z) * n + z * h


@dataclass(frozen=True)
class _Kind:
    gates: int
    step: Callable[..., State]
    paired: bool = False  # LSTM: the state is (h, c)


_KINDS = {
    "RNN_TANH": _Kind(1, _rnn_tanh_step),
    "RNN_RELU": _Kind(1, _rnn_relu_step),
    "LSTM": _Kind(4, _lstm_step, paired=True),
    "GRU": _Kind(3, _gru_step),
}


def _rnn_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _check_features(name: str, x: Tensor, weight: Tensor, input_size: int, ranks: tuple[int, ...], layout: str
                    ) -> None:
    if x.ndim not in ranks:
        raise ValueError(f"{name}: expected input of shape {layout}; got {x.ndim}-D input of shape {x.shape}")
    if not dtype_is(x.xp, x.dtype, "real floating"):
        raise TypeError(
            f"{name}: input has dtype {dtype_name(x.dtype)} and the weights have dtype {dtype_name(weight.dtype)}; "
            "expected floating-point input in the weights' dtype (token indices go through an Embedding first)"
        )
    check_dtype_matches(name, x, weight)
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{name}: input has {x.shape[-1]} features (shape {x.shape}); expected input_size={input_size}"
        )


def _check_state(name: str, what: str, state: Any, expected: tuple[int, ...]) -> Tensor:
    state = as_tensor(state, f"{name}: {what}")
    if state.shape != expected:
        raise ValueError(f"{name}: {what} has shape {state.shape}; expected {expected}")
    return state


def _reset(module: Module) -> None:
    """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
    bound = 1.0 / math.sqrt(module.hidden_size)
    for param in module.parameters():
        init.uniform_(param, -bound, bound)


class _Recurrent(Module):
    """What RNN, LSTM and GRU share: parameters per layer and direction, the time loop."""

    mode = "RNN_TANH"  # LSTM and GRU set theirs; RNN passes the one its nonlinearity names

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        mode: str | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1]; got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} acts between stacked layers only, so with num_layers=1 it does nothing",
                stacklevel=2,
            )
        self.mode = mode or self.mode
        self.kind = _KINDS[self.mode]
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        directions = 2 if bidirectional else 1
        rows = self.kind.gates * hidden_size
        # registration order is PyTorch's: layer by layer, forward direction first
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", new_parameter((rows, layer_input)))
                setattr(self, f"weight_hh{suffix}", new_parameter((rows, hidden_size)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", new_parameter((rows,)))
                    setattr(self, f"bias_hh{suffix}", new_parameter((rows,)))
        self.reset_parameters()

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self._directions]

    def reset_parameters(self) -> None:
        _reset(self)

    def _weights(self, suffix: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        get = self._parameters.get
        return get(f"weight_ih{suffix}"), get(f"weight_hh{suffix}"), get(f"bias_ih{suffix}"), get(f"bias_hh{suffix}")

    # -- input and state checks --------------------------------------------------------------
    def _layout(self) -> str:
        batched = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
        return f"{batched} or unbatched (L, H_in) with H_in={self.input_size}"

    def _initial_states(self, hx: Any, x: Tensor, batch: int, batched: bool) -> list[State]:
        """One state per layer and direction: zeros, or the slices of h0 (and c0)."""
        name, count = type(self).__name__, self.num_layers * self._directions
        shape = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        if hx is None:
            xp = x.xp
            zeros = Tensor(xp.zeros((batch, self.hidden_size), dtype=x.dtype, device=x.device))
            return [(zeros, zeros) if self.kind.paired else zeros] * count
        if self.kind.paired:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a pair (h0, c0); got {type(hx).__name__}")
            parts = [_check_state(name, what, s, shape) for what, s in zip(("h0", "c0"), hx)]
        else:
            parts = [_check_state(name, "h0", hx, shape)]
        if not batched:
            parts = [ops.reshape(p, (count, 1, self.hidden_size)) for p in parts]
        slices = [ops.unbind(p, 0) for p in parts]
        return list(zip(*slices)) if self.kind.paired else slices[0]

    # -- running -----------------------------------------------------------------------------
    def forward(self, input: Tensor, hx: Any = None):
        name = type(self).__name__
        x = as_tensor(input)
        _check_features(name, x, self._parameters["weight_ih_l0"], self.input_size, (2, 3), self._layout())
        batched = x.ndim == 3
        time_axis = 1 if self.batch_first and batched else 0
        if not batched:  # (L, H_in): run it as a batch of one
            x = ops.reshape(x, (x.shape[0], 1, self.input_size))
        length, batch = x.shape[time_axis], x.shape[1 - time_axis]
        if length == 0:
            raise ValueError(f"{name}: the sequence length must be at least 1; got input of shape {tuple(input.shape)}")
        states = self._initial_states(hx, x, batch, batched)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                w_ih, w_hh, b_ih, b_hh = self._weights(suffix)
                # every step's input projection in one product; the loop takes its steps apart
                steps = ops.unbind(ops.linear(x, w_ih, b_ih), time_axis)
                state = states[len(finals)]
                hidden: list[Tensor] = [None] * length  # type: ignore[list-item]
                for t in reversed(range(length)) if direction else range(length):
                    state = self.kind.step(steps[t], state, w_hh, b_hh)
                    hidden[t] = state[0] if self.kind.paired else state
                finals.append(state)
                outputs.append(ops.stack(hidden, time_axis))
            x = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=-1)
            if layer + 1 < self.num_layers:
                x = dropout(x, self.dropout, self.training)
        return self._pack(x, finals, batched)

    def _pack(self, output: Tensor, finals: list[State], batched: bool):
        """(output, h_n), or (output, (h_n, c_n)) for LSTM; without the batch axis if unbatched."""
        parts = [[s[i] for s in finals] for i in range(2)] if self.kind.paired else [finals]
        stacked = [ops.stack(p, 0) for p in parts]
        if not batched:
            output = ops.reshape(output, (output.shape[0], output.shape[-1]))
            stacked = [ops.reshape(s, (s.shape[0], self.hidden_size)) for s in stacked]
        return output, (tuple(stacked) if self.kind.paired else stacked[0])

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        return text


def _doc(summary: str, gates: int, extra_args: str, state: str, returns: str, example: str) -> str:
    """The docstring RNN, LSTM and GRU share, around each one's summary, states and example."""
    return f"""{summary}

    Args:
        input_size: features of each input step (H_in).
        hidden_size: features of the hidden state (H).
        num_layers: stacked layers, each fed the previous one's outputs (default 1).{extra_args}
        bias: learn the biases b_ih and b_hh (default True).
        batch_first: input and output are (N, L, features) instead of (L, N, features); the
            states keep (D * num_layers, N, H) either way (default False).
        dropout: probability of zeroing each output of every layer but the last, in training.
        bidirectional: add a pass from the last step to the first in every layer, its outputs
            joined to the forward pass's along the features (default False).

    Shape:
        input (L, N, H_in), or (N, L, H_in) with batch_first, or unbatched (L, H_in).
        {state} (D * num_layers, N, H), or (D * num_layers, H) unbatched; zeros when left out.
        output (L, N, D * H), or (N, L, D * H) with batch_first, or (L, D * H) unbatched.
        D is 2 if bidirectional, else 1. Parameters, with PyTorch's names and layouts (its state
        dicts load as they are): weight_ih_l{{k}} ({gates} * H, H_in for k = 0, else D * H),
        weight_hh_l{{k}} ({gates} * H, H), bias_ih_l{{k}} and bias_hh_l{{k}} ({gates} * H,); the
        second direction's end in _reverse.

    Returns:
        {returns}

    Example:
{example}
    """


class RNN(_Recurrent):
    __doc__ = _doc(
        "Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh), or relu for tanh.",
        1,
        '\n        nonlinearity: "tanh" (default) or "relu".',
        "h0",
        "(output, h_n): the last layer's state at every step, and every layer's final state.",
        """        >>> rnn = gd.nn.RNN(10, 20, num_layers=2)
        >>> output, h_n = rnn(gd.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))""",
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        mode = _rnn_mode(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, mode=mode)
        self.nonlinearity = nonlinearity


class LSTM(_Recurrent):
    __doc__ = _doc(
        """Long short-term memory (Hochreiter & Schmidhuber, 1997), in PyTorch's gate order i, f, g, o:

        i, f, g, o = x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh, cut in four;
        c_t = sigmoid(f) * c_(t-1) + sigmoid(i) * tanh(g);  h_t = sigmoid(o) * tanh(c_t).""",
        4,
        "",
        "h0 and c0, passed as hx = (h0, c0)",
        "(output, (h_n, c_n)).",
        """        >>> lstm = gd.nn.LSTM(10, 20, batch_first=True)
        >>> output, (h_n, c_n) = lstm(gd.randn(3, 5, 10))
        >>> output.shape, c_n.shape
        ((3, 5, 20), (1, 3, 20))""",
    )
    mode = "LSTM"


class GRU(_Recurrent):
    __doc__ = _doc(
        """Gated recurrent unit (Cho et al., 2014), in PyTorch's gate order r, z, n:

        r = sigmoid(W_ir x_t + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x_t + b_iz + W_hz h + b_hz);
        n = tanh(W_in x_t + b_in + r * (W_hn h + b_hn));  h_t = (1 - z) * n + z * h, h = h_(t-1).""",
        3,
        "",
        "h0",
        "(output, h_n).",
        """        >>> gru = gd.nn.GRU(10, 20, bidirectional=True)
        >>> output, h_n = gru(gd.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        ((5, 3, 40), (2, 3, 20))""",
    )
    mode = "GRU"


# -- cells: one step, the state passed in and out by the caller --------------------------------
class _Cell(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.mode, self.kind = mode, _KINDS[mode]
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = self.kind.gates * hidden_size
        self.weight_ih = new_parameter((rows, input_size))
        self.weight_hh = new_parameter((rows, hidden_size))
        self.bias_ih = new_parameter((rows,)) if bias else None
        self.bias_hh = new_parameter((rows,)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset(self)

    def forward(self, input: Tensor, hx: Any = None):
        name = type(self).__name__
        x = as_tensor(input)
        layout = f"(N, H_in) or unbatched (H_in,) with H_in={self.input_size}"
        _check_features(name, x, self.weight_ih, self.input_size, (1, 2), layout)
        shape = x.shape[:-1] + (self.hidden_size,)
        if hx is None:
            zeros = Tensor(x.xp.zeros(shape, dtype=x.dtype, device=x.device))
            state = (zeros, zeros) if self.kind.paired else zeros
        elif self.kind.paired:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a pair (h, c); got {type(hx).__name__}")
            state = tuple(_check_state(name, what, s, shape) for what, s in zip(("h", "c"), hx))
        else:
            state = _check_state(name, "hx", hx, shape)
        return self.kind.step(ops.linear(x, self.weight_ih, self.bias_ih), state, self.weight_hh, self.bias_hh)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        return text


class RNNCell(_Cell):
    """One step of RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu).

    Args:
        input_size: features of the input (H_in).
        hidden_size: features of the hidden state (H).
        bias: learn b_ih and b_hh (default True).
        nonlinearity: "tanh" (default) or "relu".

    Shape:
        input (N, H_in) or (H_in,); hx (N, H) or (H,), zeros when left out -> h' like hx.
        weight_ih (H, H_in), weight_hh (H, H), bias_ih and bias_hh (H,), as PyTorch.

    Example:
        >>> cell = gd.nn.RNNCell(10, 20)
        >>> h = None
        >>> for x in gd.randn(6, 3, 10):  # loop over time yourself
        ...     h = cell(x, h)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__(_rnn_mode(nonlinearity), input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity


class LSTMCell(_Cell):
    """One step of LSTM: (h', c') from x and (h, c); gates i, f, g, o as in ``LSTM``.

    Args:
        input_size: features of the input (H_in).
        hidden_size: features of the hidden and cell states (H).
        bias: learn b_ih and b_hh (default True).

    Shape:
        input (N, H_in) or (H_in,); hx = (h, c), each (N, H) or (H,), zeros when left out
        -> (h', c'). weight_ih (4H, H_in), weight_hh (4H, H), bias_ih and bias_hh (4H,).

    Example:
        >>> cell = gd.nn.LSTMCell(10, 20)
        >>> h, c = cell(gd.randn(3, 10))
        >>> h, c = cell(gd.randn(3, 10), (h, c))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__("LSTM", input_size, hidden_size, bias)


class GRUCell(_Cell):
    """One step of GRU: h' from x and h; gates r, z, n as in ``GRU``.

    Args:
        input_size: features of the input (H_in).
        hidden_size: features of the hidden state (H).
        bias: learn b_ih and b_hh (default True).

    Shape:
        input (N, H_in) or (H_in,); hx (N, H) or (H,), zeros when left out -> h' like hx.
        weight_ih (3H, H_in), weight_hh (3H, H), bias_ih and bias_hh (3H,).

    Example:
        >>> cell = gd.nn.GRUCell(10, 20)
        >>> h = cell(gd.randn(3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__("GRU", input_size, hidden_size, bias)
