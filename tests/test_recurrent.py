"""RNN, LSTM, GRU, their cells and Embedding: gradient checks through time and device/dtype on every
backend row, PyTorch's outputs and gradients on the same weights (numpy row), a GRU that learns a
memory task, and the bad-input errors. Also the join/split primitives the layers run on."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from conftest import make
from test_nn import params_as_inputs, rel_err

import gdnet as gd
from gdnet import ops
from gdnet.nn import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
from gdnet.nn import functional as F
from gdnet.nn.layers import Linear


def N(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)



@pytest.fixture
def numpy_backend():
    """The PyTorch comparisons run on the numpy row only."""
    with gd.use_backend("numpy") as active:
        yield active

# -- the layers: one row each ----------------------------------------------------------------------
@dataclass
class Row:
    id: str
    make: Callable[[Any], Any]  # gd.nn or torch.nn -> layer: the same call builds both
    input: tuple[int, ...]  # input shape
    state: tuple[tuple[int, ...], ...] = ()  # h0 (and c0) shapes; () runs without an initial state
    cell: bool = False
    kwargs: dict = field(default_factory=dict)


ROWS = [
    Row("rnn-tanh", lambda nn: nn.RNN(3, 4), (4, 2, 3)),
    Row("rnn-relu-h0", lambda nn: nn.RNN(3, 4, nonlinearity="relu"), (4, 2, 3), ((1, 2, 4),)),
    Row("rnn-no-bias-batch-first", lambda nn: nn.RNN(3, 4, bias=False, batch_first=True), (2, 4, 3)),
    Row("rnn-2-layers-h0", lambda nn: nn.RNN(3, 4, num_layers=2), (3, 2, 3), ((2, 2, 4),)),
    Row(
        "rnn-relu-bidirectional-2-layers-batch-first",
        lambda nn: nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True, batch_first=True),
        (2, 3, 3),
        ((4, 2, 4),),
    ),
    Row("lstm", lambda nn: nn.LSTM(3, 4), (4, 2, 3)),
    Row("lstm-batch-first-h0", lambda nn: nn.LSTM(3, 4, batch_first=True), (2, 4, 3), ((1, 2, 4), (1, 2, 4))),
    Row("lstm-2-layers", lambda nn: nn.LSTM(3, 4, num_layers=2), (3, 2, 3)),
    Row(
        "lstm-2-layers-batch-first-h0",
        lambda nn: nn.LSTM(3, 4, num_layers=2, batch_first=True),
        (2, 3, 3),
        ((2, 2, 4), (2, 2, 4)),
    ),
    Row("lstm-bidirectional", lambda nn: nn.LSTM(3, 4, bidirectional=True), (3, 2, 3), ((2, 2, 4), (2, 2, 4))),
    Row("gru", lambda nn: nn.GRU(3, 4), (4, 2, 3)),
    Row("gru-batch-first-h0", lambda nn: nn.GRU(3, 4, batch_first=True), (2, 4, 3), ((1, 2, 4),)),
    Row("gru-2-layers-h0", lambda nn: nn.GRU(3, 4, num_layers=2), (3, 2, 3), ((2, 2, 4),)),
    Row("gru-2-layers-batch-first", lambda nn: nn.GRU(3, 4, num_layers=2, batch_first=True), (2, 3, 3)),
    Row(
        "gru-bidirectional-2-layers",
        lambda nn: nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True),
        (2, 3, 3),
        ((4, 2, 4),),
    ),
    Row("gru-unbatched", lambda nn: nn.GRU(3, 4, batch_first=True), (4, 3), ((1, 4),)),
    Row("lstm-unbatched-2-layers", lambda nn: nn.LSTM(3, 4, num_layers=2), (4, 3), ((2, 4), (2, 4))),
    Row("rnn-batch-of-one", lambda nn: nn.RNN(3, 4, batch_first=True), (1, 4, 3), ((1, 1, 4),)),
    Row("rnn-cell", lambda nn: nn.RNNCell(3, 4), (2, 3), ((2, 4),), cell=True),
    Row("rnn-cell-relu-no-state", lambda nn: nn.RNNCell(3, 4, nonlinearity="relu"), (2, 3), cell=True),
    Row("lstm-cell", lambda nn: nn.LSTMCell(3, 4), (2, 3), ((2, 4), (2, 4)), cell=True),
    Row("lstm-cell-unbatched", lambda nn: nn.LSTMCell(3, 4, bias=False), (3,), ((4,), (4,)), cell=True),
    Row("gru-cell", lambda nn: nn.GRUCell(3, 4), (2, 3), ((2, 4),), cell=True),
    Row("gru-cell-no-state", lambda nn: nn.GRUCell(3, 4), (1, 3), cell=True),
]
# the gradient checks run on every backend row and bump every parameter: the smallest sizes
GRADCHECK_ROWS = [
    Row("rnn-tanh", lambda nn: nn.RNN(2, 3), (3, 2, 2)),
    Row("rnn-relu-h0", lambda nn: nn.RNN(2, 3, nonlinearity="relu"), (3, 2, 2), ((1, 2, 3),)),
    Row("rnn-no-bias-batch-first", lambda nn: nn.RNN(2, 3, bias=False, batch_first=True), (2, 3, 2)),
    Row("lstm-batch-first-h0", lambda nn: nn.LSTM(2, 2, batch_first=True), (2, 3, 2), ((1, 2, 2), (1, 2, 2))),
    Row("lstm-unbatched-2-layers", lambda nn: nn.LSTM(2, 1, num_layers=2), (3, 2), ((2, 1), (2, 1))),
    Row("gru-h0", lambda nn: nn.GRU(2, 2), (3, 2, 2), ((1, 2, 2),)),
    Row(
        "gru-bidirectional-2-layers",
        lambda nn: nn.GRU(2, 1, num_layers=2, bidirectional=True, batch_first=True),
        (1, 2, 2),
        ((4, 1, 1),),
    ),
    Row("rnn-cell", lambda nn: nn.RNNCell(2, 3), (2, 2), ((2, 3),), cell=True),
    Row("lstm-cell", lambda nn: nn.LSTMCell(2, 2), (2, 2), ((2, 2), (2, 2)), cell=True),
    Row("gru-cell", lambda nn: nn.GRUCell(2, 2), (2, 2), ((2, 2),), cell=True),
]


def _rows(rows=ROWS):
    return [pytest.param(row, id=row.id) for row in rows]


def _outputs(row: Row, result) -> list:
    """The tensors a layer returns, flattened: [output, h_n] or [output, h_n, c_n] or a cell's."""
    if row.cell:
        return list(result) if isinstance(result, tuple) else [result]
    output, final = result
    return [output, *final] if isinstance(final, tuple) else [output, final]


def _call(layer, row: Row, x, states):
    if not states:
        return layer(x)
    return layer(x, tuple(states) if len(states) == 2 else states[0])


def _state_hosts(row: Row) -> list[np.ndarray]:
    return [N(*shape, seed=10 + i, scale=0.5) for i, shape in enumerate(row.state)]


def _tiny_inputs(row: Row, dtype: str) -> list:
    x = make(N(*row.input, seed=3), dtype, requires_grad=True)
    return [x] + [make(host, dtype, requires_grad=True) for host in _state_hosts(row)]


class Flat(gd.nn.Module):
    """A row's layer called on [x, h0, (c0)], its outputs flattened into one vector."""

    def __init__(self, layer, row: Row):
        super().__init__()
        self.layer, self.row = layer, row

    def forward(self, inputs):
        parts = _outputs(self.row, _call(self.layer, self.row, inputs[0], inputs[1:]))
        return ops.concat([ops.reshape(p, (-1,)) for p in parts])


@pytest.mark.parametrize("row", _rows(GRADCHECK_ROWS))
def test_gradcheck_through_time(backend, float_dtype, row):
    run, params = params_as_inputs(Flat(row.make(gd.nn).to(float_dtype), row))
    inputs = _tiny_inputs(row, float_dtype)
    count = len(inputs)
    assert gd.gradcheck(lambda *ts: run(list(ts[:count]), *ts[count:]), *inputs, *params)


@pytest.mark.parametrize("row", _rows())
def test_outputs_stay_on_device_and_dtype(backend, row):
    layer = row.make(gd.nn)
    inputs = _tiny_inputs(row, "float32")
    outputs = _outputs(row, _call(layer, row, inputs[0], inputs[1:]))
    total = outputs[0].sum()
    for other in outputs[1:]:
        total = total + other.sum()
    total.backward()
    for tensor in outputs + inputs + list(layer.parameters()):
        assert tensor.device == inputs[0].device and tensor.dtype == inputs[0].dtype
    for tensor in inputs + list(layer.parameters()):
        assert tensor.grad is not None and tensor.grad.shape == tensor.shape
        assert tensor.grad.device == tensor.device and tensor.grad.dtype == tensor.dtype


@pytest.mark.parametrize("row", _rows())
def test_matches_torch(numpy_backend, row):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = row.make(torch.nn).double()
    ours = row.make(gd.nn).to("float64")
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    hosts = [N(*row.input, seed=3)] + _state_hosts(row)
    mine = [make(h, requires_grad=True) for h in hosts]
    other = [torch.tensor(h, requires_grad=True) for h in hosts]
    got = _outputs(row, _call(ours, row, mine[0], mine[1:]))
    want = _outputs(row, _call(theirs, row, other[0], other[1:]))
    assert len(got) == len(want)
    loss, torch_loss = 0.0, 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        assert rel_err(g.numpy(), w.detach().numpy()) < 1e-6, f"output {i}"
        weights = N(*g.shape, seed=20 + i)
        loss = loss + (g * make(weights)).sum()
        torch_loss = torch_loss + (w * torch.from_numpy(weights)).sum()
    loss.backward()
    torch_loss.backward()
    for i, (m, o) in enumerate(zip(mine, other)):
        assert rel_err(m.grad.numpy(), o.grad.numpy()) < 1e-6, f"input {i}"
    reference = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert rel_err(param.grad.numpy(), reference[name].grad.numpy()) < 1e-6, name


def test_unbatched_input_is_a_batch_of_one(backend, float_dtype):
    for layer in (LSTM(3, 4, num_layers=2, batch_first=True), GRU(3, 4, bidirectional=True), RNN(3, 4)):
        layer.to(float_dtype)
        x = N(5, 3)
        single, final = layer(make(x, float_dtype))
        batch_first = layer.batch_first
        batched, batched_final = layer(make(x[None] if batch_first else x[:, None], float_dtype))
        expected = batched.numpy()[0] if batch_first else batched.numpy()[:, 0]
        np.testing.assert_allclose(single.numpy(), expected, rtol=1e-6, atol=1e-7)
        for one, many in zip(final if isinstance(final, tuple) else [final],
                             batched_final if isinstance(batched_final, tuple) else [batched_final]):
            assert one.shape == (many.shape[0], 4)
            np.testing.assert_allclose(one.numpy(), many.numpy()[:, 0], rtol=1e-6, atol=1e-7)


def test_output_shapes(backend):
    x = gd.zeros((5, 3, 10))
    output, (h_n, c_n) = LSTM(10, 20, num_layers=3, bidirectional=True)(x)
    assert output.shape == (5, 3, 40) and h_n.shape == (6, 3, 20) and c_n.shape == (6, 3, 20)
    output, h_n = GRU(10, 7, batch_first=True)(gd.zeros((3, 5, 10)))
    assert output.shape == (3, 5, 7) and h_n.shape == (1, 3, 7)
    output, h_n = RNN(10, 7, num_layers=2)(gd.zeros((1, 1, 10)))
    assert output.shape == (1, 1, 7) and h_n.shape == (2, 1, 7)
    h, c = LSTMCell(10, 20)(gd.zeros((10,)))
    assert h.shape == (20,) and c.shape == (20,)


def test_last_output_is_the_final_state(backend):
    output, h_n = GRU(3, 4, num_layers=2)(make(N(5, 2, 3), "float32"))
    np.testing.assert_array_equal(output.numpy()[-1], h_n.numpy()[-1])
    output, (h_n, _) = LSTM(3, 4, bidirectional=True, batch_first=True)(make(N(2, 5, 3), "float32"))
    np.testing.assert_array_equal(output.numpy()[:, -1, :4], h_n.numpy()[0])  # forward pass ends last
    np.testing.assert_array_equal(output.numpy()[:, 0, 4:], h_n.numpy()[1])  # reverse pass ends first


def test_cells_step_like_their_layers(backend):
    gd.manual_seed(1)
    layer = LSTM(3, 4)
    cell = LSTMCell(3, 4)
    cell.load_state_dict({name[:-3]: value for name, value in layer.state_dict().items()})
    xs = make(N(4, 2, 3), "float32")
    output, (h_n, c_n) = layer(xs)
    state = None
    for t in range(4):
        state = cell(xs[t], state)
    np.testing.assert_allclose(state[0].numpy(), h_n.numpy()[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state[1].numpy(), c_n.numpy()[0], rtol=1e-6, atol=1e-7)


def test_parameters_start_uniform_in_plus_minus_one_over_sqrt_hidden(backend):
    layer = LSTM(30, 64, num_layers=2, bidirectional=True)
    bound = 1.0 / math.sqrt(64)
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()]).astype(np.float64)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
    assert values.std() == pytest.approx(bound / math.sqrt(3.0), rel=0.02)
    assert layer.weight_ih_l1.shape == (256, 128) and layer.bias_hh_l0_reverse.shape == (256,)
    assert all(p.dtype == backend.xp.float32 and p.device == backend.device for p in layer.parameters())


def test_dropout_acts_between_layers_in_training_only(backend):
    gd.manual_seed(2)
    layer = GRU(3, 8, num_layers=2, dropout=0.5)
    x = make(N(4, 2, 3), "float32")
    first, _ = layer(x)
    second, _ = layer(x)
    assert not np.allclose(first.numpy(), second.numpy())  # a new mask each call
    layer.eval()
    plain = GRU(3, 8, num_layers=2)
    plain.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(x)[0].numpy(), plain(x)[0].numpy())
    with pytest.warns(UserWarning, match="num_layers=1"):
        GRU(3, 8, dropout=0.5)


def test_reprs():
    assert repr(LSTM(10, 20, num_layers=2, batch_first=True)) == "LSTM(10, 20, num_layers=2, batch_first=True)"
    assert repr(GRU(3, 4, bidirectional=True, bias=False)) == "GRU(3, 4, bias=False, bidirectional=True)"
    assert repr(RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4, nonlinearity='relu')"
    assert repr(RNN(3, 4, num_layers=2, dropout=0.25)) == "RNN(3, 4, num_layers=2, dropout=0.25)"
    assert repr(GRUCell(3, 4)) == "GRUCell(3, 4)"
    assert repr(RNNCell(3, 4, bias=False, nonlinearity="relu")) == "RNNCell(3, 4, bias=False, nonlinearity='relu')"
    assert repr(Embedding(10, 3, padding_idx=-1)) == "Embedding(10, 3, padding_idx=9)"


# -- learning: a GRU remembers the first step of a sequence -----------------------------------------
def test_gru_learns_to_remember_the_first_step():
    """Label = sign of the first of 6 noisy steps: the answer must travel through every later step."""
    with gd.use_backend("numpy"):
        gd.manual_seed(0)
        rng = np.random.default_rng(0)

        def batch(n):
            x = rng.normal(size=(n, 6, 1))
            return make(x, "float32"), gd.tensor((x[:, 0, 0] > 0).astype(np.int64))

        gru, head = GRU(1, 16, batch_first=True), Linear(16, 2)
        params = list(gru.parameters()) + list(head.parameters())
        optimizer = gd.optim.SGD(params, lr=0.3, momentum=0.9)
        for _ in range(200):
            x, y = batch(32)
            _, h_n = gru(x)
            loss = F.cross_entropy(head(h_n[0]), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        x, y = batch(500)
        with gd.no_grad():
            _, h_n = gru(x)
            accuracy = F.accuracy(head(h_n[0]), y).item()
    assert accuracy > 0.95


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: LSTM(3, 4, batch_first=True)(gd.zeros((3,))), ValueError,
         r"LSTM: expected input of shape \(N, L, H_in\) or unbatched \(L, H_in\) with H_in=3; got 1-D input"),
        (lambda: GRU(3, 4)(gd.zeros((2, 5, 4, 3))), ValueError, r"GRU: expected input of shape \(L, N, H_in\)"),
        (lambda: LSTM(3, 4)(gd.zeros((5, 2, 7))), ValueError,
         r"LSTM: input has 7 features \(shape \(5, 2, 7\)\); expected input_size=3"),
        (lambda: RNN(3, 4)(gd.zeros((5, 7))), ValueError, "input has 7 features"),
        (lambda: GRU(3, 4, num_layers=2)(gd.zeros((5, 2, 3)), gd.zeros((1, 2, 4))), ValueError,
         r"GRU: h0 has shape \(1, 2, 4\); expected \(2, 2, 4\)"),
        (lambda: RNN(3, 4, bidirectional=True)(gd.zeros((5, 2, 3)), gd.zeros((1, 2, 4))), ValueError,
         r"h0 has shape \(1, 2, 4\); expected \(2, 2, 4\)"),
        (lambda: LSTM(3, 4)(gd.zeros((5, 2, 3)), (gd.zeros((1, 2, 4)), gd.zeros((1, 3, 4)))), ValueError,
         r"LSTM: c0 has shape \(1, 3, 4\); expected \(1, 2, 4\)"),
        (lambda: LSTM(3, 4)(gd.zeros((5, 2, 3)), gd.zeros((1, 2, 4))), TypeError, r"hx must be a pair \(h0, c0\)"),
        (lambda: GRU(3, 4)(gd.zeros((5, 3)), gd.zeros((1, 1, 4))), ValueError,
         r"h0 has shape \(1, 1, 4\); expected \(1, 4\)"),
        (lambda: GRU(3, 4)(gd.tensor(np.zeros((5, 2, 3), dtype=np.int64))), TypeError,
         "GRU: input has dtype int64 and the weights have dtype float32; expected floating-point .* Embedding"),
        (lambda: GRU(3, 4)(gd.zeros((0, 2, 3))), ValueError, "sequence length must be at least 1"),
        (lambda: GRUCell(3, 4)(gd.zeros((2, 5))), ValueError, "GRUCell: input has 5 features"),
        (lambda: GRUCell(3, 4)(gd.zeros((2, 3)), gd.zeros((3, 4))), ValueError,
         r"GRUCell: hx has shape \(3, 4\); expected \(2, 4\)"),
        (lambda: LSTMCell(3, 4)(gd.zeros((2, 2, 3))), ValueError, "LSTMCell: expected input of shape"),
        (lambda: LSTMCell(3, 4)(gd.zeros((2, 3)), gd.zeros((2, 4))), TypeError, r"hx must be a pair \(h, c\)"),
        (lambda: RNN(3, 4, nonlinearity="sigmoid"), ValueError, "unknown nonlinearity 'sigmoid'"),
        (lambda: LSTM(3, 0), ValueError, "LSTM: hidden_size must be a positive integer; got 0"),
        (lambda: GRU(3, 4, num_layers=0), ValueError, "num_layers must be a positive integer"),
        (lambda: GRU(3, 4, dropout=1.5), ValueError, r"dropout must be a probability in \[0, 1\]; got 1.5"),
        (lambda: RNNCell(0, 4), ValueError, "RNNCell: input_size must be a positive integer"),
    ],
    ids=[
        "1-d", "4-d", "features", "unbatched-features", "h0-layers", "h0-directions", "c0-batch", "lstm-hx-not-pair",
        "unbatched-h0-3d", "integer-input", "empty-sequence", "cell-features", "cell-hx", "cell-rank", "cell-pair",
        "nonlinearity", "hidden-size", "num-layers", "dropout", "cell-input-size",
    ],
)
def test_bad_input_raises_clearly(backend, call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- Embedding --------------------------------------------------------------------------------------
INDICES = np.array([[1, 4, 1], [0, 2, 4]])


def test_embedding_gradcheck(backend, float_dtype):
    # (no padding_idx: its row is used but, by design, gets no gradient)
    indices = gd.tensor(INDICES)
    weight = make(N(5, 3, seed=4), float_dtype, requires_grad=True)
    assert gd.gradcheck(lambda w: F.embedding(indices, w), weight)


@pytest.mark.parametrize("padding_idx", [None, 4], ids=["plain", "padding"])
def test_embedding_matches_torch(numpy_backend, padding_idx):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx).double()
    ours = Embedding(5, 3, padding_idx=padding_idx).to("float64")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    y, ty = ours(gd.tensor(INDICES)), theirs(torch.from_numpy(INDICES))
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-12
    weights = N(2, 3, 3, seed=5)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    assert rel_err(ours.weight.grad.numpy(), theirs.weight.grad.numpy()) < 1e-12


def test_embedding_shapes_device_and_dtype(backend):
    layer = Embedding(6, 4)
    for indices in (np.array([3]), np.array([[5]]), INDICES, np.array(2), np.zeros((2, 0), dtype=np.int64)):
        y = layer(gd.tensor(indices))
        assert y.shape == indices.shape + (4,)
        assert y.device == layer.weight.device and y.dtype == layer.weight.dtype
    layer(gd.tensor(INDICES)).sum().backward()
    grad = layer.weight.grad
    assert grad.device == layer.weight.device and grad.dtype == layer.weight.dtype
    np.testing.assert_array_equal(grad.numpy()[:, 0], [1.0, 2.0, 1.0, 0.0, 2.0, 0.0])  # repeats add up
    assert layer(gd.tensor(np.array([1, 2], dtype=np.int32))).shape == (2, 4)
    assert layer([0, 5]).shape == (2, 4)


def test_embedding_init_and_padding_row(backend):
    layer = Embedding(2000, 8, padding_idx=-1)
    weight = layer.weight.numpy().astype(np.float64)
    assert layer.padding_idx == 1999 and not weight[1999].any()
    assert weight[:-1].std() == pytest.approx(1.0, rel=0.02) and abs(weight[:-1].mean()) < 0.02
    layer(gd.tensor(np.array([1999, 3, 1999]))).sum().backward()
    assert not layer.weight.grad.numpy()[1999].any() and layer.weight.grad.numpy()[3].all()


def test_embedding_from_pretrained(backend):
    table = N(4, 3)
    frozen = Embedding.from_pretrained(table)
    np.testing.assert_allclose(frozen.weight.numpy(), table, rtol=1e-6)
    assert not frozen.weight.requires_grad and frozen.weight.device == backend.device
    table[0, 0] = 100.0  # the layer holds a copy
    assert frozen.weight.numpy()[0, 0] != 100.0
    trainable = Embedding.from_pretrained(table, freeze=False)
    trainable(gd.tensor(np.array([0, 1]))).sum().backward()
    assert trainable.weight.grad is not None
    with pytest.raises(ValueError, match=r"expected a 2-D \(num_embeddings, embedding_dim\) table; got shape \(4,\)"):
        Embedding.from_pretrained(N(4))


PADDED = np.array([[0, 3, 3], [1, 3, 2]])


def test_functional_embedding_negative_padding_idx(backend, float_dtype):
    weight = make(N(4, 2), float_dtype, requires_grad=True)
    out = F.embedding(gd.tensor(PADDED), weight, padding_idx=-1)
    np.testing.assert_allclose(out.numpy(), N(4, 2)[PADDED], rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])


def test_functional_embedding_negative_padding_idx_matches_torch(numpy_backend):
    torch = pytest.importorskip("torch")
    weight, theirs = make(N(4, 2), requires_grad=True), torch.tensor(N(4, 2), requires_grad=True)
    F.embedding(gd.tensor(PADDED), weight, padding_idx=-1).sum().backward()
    torch.nn.functional.embedding(torch.from_numpy(PADDED), theirs, padding_idx=-1).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("padding_idx", [4, -5])
def test_functional_embedding_padding_idx_out_of_range(backend, padding_idx):
    with pytest.raises(ValueError, match=rf"embedding: padding_idx {padding_idx} is out of range for 4 embeddings; "
                                         r"expected a value in \[-4, 3\]"):
        F.embedding(gd.tensor(PADDED), make(N(4, 2), "float32"), padding_idx=padding_idx)


@pytest.mark.parametrize(
    "indices, message",
    [
        (np.array([0, 5, 2]), r"embedding: indices must lie in \[0, 4\] for 5 embeddings; got values from 0 to 5"),
        (np.array([[1, -1]]), r"indices must lie in \[0, 4\] for 5 embeddings; got values from -1 to 1"),
    ],
    ids=["too-large", "negative"],
)
def test_embedding_index_out_of_range(backend, indices, message):
    if not backend.sync_is_free:
        pytest.skip("index values are checked only where reading them needs no device synchronisation")
    with pytest.raises(ValueError, match=message):
        Embedding(5, 2)(gd.tensor(indices))


def test_embedding_bad_arguments(backend):
    with pytest.raises(TypeError, match="embedding: indices must be integers; got .*float"):
        Embedding(5, 2)(gd.zeros((3,)))
    with pytest.raises(ValueError, match="padding_idx 5 is out of range for 5 embeddings"):
        Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer; got 0"):
        Embedding(5, 0)


def test_embedding_indices_on_another_device_are_refused():
    pytest.importorskip("array_api_strict")
    with gd.use_backend("array_api_strict", "device1"):
        layer = Embedding(5, 2)
        with pytest.raises(gd.DeviceMismatchError):
            layer(np.array([0, 1]))


def test_embedding_feeds_a_gru_end_to_end(backend):
    model_embed, gru = Embedding(10, 4), GRU(4, 5, batch_first=True)
    _, h_n = gru(model_embed(gd.tensor(np.array([[1, 2, 3], [4, 4, 0]]))))
    h_n.sum().backward()
    assert model_embed.weight.grad.shape == (10, 4) and not model_embed.weight.grad.numpy()[5:].any()


# -- the join and split primitives -----------------------------------------------------------------
def test_unbind_backward_is_one_buffer_not_one_copy_per_piece(backend, float_dtype):
    x = make(N(6, 2), float_dtype, requires_grad=True)
    pieces = ops.unbind(x)
    assert len(pieces) == 6 and all(p.shape == (2,) for p in pieces)
    (pieces[1] * 2.0 + pieces[4]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0], [2, 2], [0, 0], [0, 0], [1, 1], [0, 0]])
    with gd.no_grad():
        assert not any(p.requires_grad for p in ops.unbind(x, axis=1))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: ops.concat([x, gd.zeros((3, 3))], axis=1), r"same shape except along axis 1; got shapes"),
        (lambda x: ops.stack([x, gd.zeros((2, 4))]), r"stack: tensors must have the same shape; got shapes"),
        (lambda x: ops.concat([], axis=0), "needs at least one tensor"),
        (lambda x: ops.concat([x], axis=2), "axis 2 is out of range for 2-D tensors"),
        (lambda x: ops.chunk(x, 2, axis=1), "axis 1 of length 3 does not split into 2 equal parts"),
        (lambda x: ops.unbind(x, axis=-3), "unbind: axis -3 is out of range"),
    ],
    ids=["concat-shapes", "stack-shapes", "concat-empty", "concat-axis", "chunk-uneven", "unbind-axis"],
)
def test_join_and_split_errors(backend, call, message):
    with pytest.raises(ValueError, match=message):
        call(gd.zeros((2, 3)))


def test_no_warnings_from_a_recurrent_step(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = LSTM(2, 3)(make(N(3, 1, 2, scale=100.0), "float32"))
        out.sum().backward()
