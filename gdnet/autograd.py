"""Tensor, the define-by-run graph, and reverse-mode differentiation.

A Tensor wraps one array of the active backend. Calling a primitive (``ops.py``) on tensors
runs its forward on the raw arrays and, when gradients are wanted, records the primitive as
the output's creator and numbers it in creation order. ``backward()`` walks the recorded
primitives from the highest number down (a reverse topological order, as every input was made
before the op that reads it; PyTorch's engine orders by the same sequence number), hands each the
gradient of its output and accumulates what comes back into its inputs; leaves (parameters) keep
theirs in ``.grad``. Saved arrays are freed as the walk passes.

Arrays changed in place (an optimizer step) would make a saved array wrong for its backward, so
code that changes a tensor in place calls ``increment_version``: the tensor's ``_version`` then
takes the next number of the same sequence, and backward refuses any op that saved the tensor
(or a view of it) and is numbered below it. Nothing is recorded when an op runs.
"""

from __future__ import annotations

import contextlib
import itertools
from heapq import heappop, heappush
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import backends as _backends

Array = Any  # an array-API array of any backend

_grad_enabled = True
_sequence = itertools.count()
_hook_keys = itertools.count()
_NAMESPACES: dict[type, Any] = {}
# leaves with post-accumulate-grad hooks: while 0, backward() does no hook bookkeeping at all
_hooked_leaves = 0
# callbacks queued (queue_callback) for the end of the backward pass now running; None outside one
_final_callbacks: list[Callable[[], None]] | None = None


def namespace_of(array: Array):
    """The array-API namespace of ``array``, from the backend that owns its type (cached by
    array type: one dict lookup per call)."""
    kind = type(array)
    xp = _NAMESPACES.get(kind)
    if xp is None:
        owner = _backends.owner(array)
        xp = _NAMESPACES[kind] = owner.namespace(array)
        if owner.has_one_device(kind):
            _ONE_DEVICE.add(kind)
        if owner.device_scope(array) is not None:
            _SCOPED.add(kind)
    return xp


# array types whose arrays all live on one device (NumPy's): ops skip comparing their devices
_ONE_DEVICE: set[type] = set()
# array types whose library computes on a current device (CuPy's): ops run under the device of
# their first input, so arrays on a second GPU work whichever device is current
_SCOPED: set[type] = set()


def device_scope(array: Array) -> Any:
    """A context manager making ``array``'s device current where its library needs that (CuPy),
    else one that does nothing."""
    namespace_of(array)
    if type(array) in _SCOPED:
        return _backends.owner(array).device_scope(array)
    return NO_SCOPE


NO_SCOPE = contextlib.nullcontext()  # what device_scope gives where there is none (reusable: no state)


_DTYPE_KINDS: dict[tuple[Any, str, Any], bool] = {}


def dtype_is(xp: Any, dtype: Any, kind: str) -> bool:
    """``xp.isdtype(dtype, kind)``, cached: NumPy's isdtype costs microseconds per call."""
    # the namespace leads the key, so dtypes of different libraries are never compared
    key = (xp, kind, dtype)
    answer = _DTYPE_KINDS.get(key)
    if answer is None:
        answer = _DTYPE_KINDS[key] = bool(xp.isdtype(dtype, kind))
    return answer


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Record nothing inside the block: evaluation, optimizer updates, metrics."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Record again inside a ``no_grad`` block."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


class DeviceMismatchError(ValueError):
    """Tensors from different backends or devices met in one operation."""


def _where(array: Array) -> str:
    owner = _backends.find(type(array))
    if owner is None:  # not an array of any backend: name its type
        return f"a {type(array).__name__}"
    return f"{owner.name} on {owner.device_name(array)}"


def check_same_device(arrays: Sequence[Array]) -> None:
    """Raise DeviceMismatchError unless every array has one namespace and one device."""
    first = arrays[0]
    xp, device = namespace_of(first), first.device
    for other in arrays[1:]:
        if namespace_of(other) is not xp or other.device != device:
            raise DeviceMismatchError(
                f"arrays from different backends or devices in one operation: {_where(first)} "
                f"and {_where(other)}; expected all on one (move them with gd.tensor(...) under "
                "one backend, or keep the model and its batches on the same backend)"
            )


def as_tensor(value: Any, name: str = "input") -> "Tensor":
    """``value`` as a Tensor: a Tensor as it is, an array of a backend wrapped (a constant, as
    Chainer takes its arrays), anything else refused.

    The one rule for every function and layer that takes a Tensor. Arrays of another backend
    or device than the other operands still meet ``DeviceMismatchError`` in the operation.

    Raises:
        TypeError: ``value`` is a Python list, number or other non-array, naming ``gd.tensor``.
    """
    if isinstance(value, Tensor):
        return value
    if type(value) not in _NAMESPACES:
        try:
            namespace_of(value)
        except TypeError:
            raise TypeError(
                f"{name} must be a gd.Tensor or an array of the active backend; got a {type(value).__name__} "
                "(make a Tensor from Python data with gd.tensor(...))"
            ) from None
    return Tensor(value)


def spelling(function: str, value: Any, alias: Any, default: Any = None, names: tuple[str, str] = ("axis", "dim")):
    """One argument that the array API and PyTorch spell differently (``axis``/``dim``,
    ``keepdims``/``keepdim``): whichever was given (not None), else ``default``.

    Raises:
        TypeError: both spellings were given.
    """
    if alias is None:
        return default if value is None else value
    if value is not None:
        raise TypeError(
            f"{function}() got both {names[0]}={value!r} and {names[1]}={alias!r}; they are two spellings of one "
            f"argument: pass only one"
        )
    return alias


def dtype_name(dtype: Any) -> str:
    """'float32' for float32 of any library (NumPy's, array_api_strict's, torch's)."""
    return str(dtype).rsplit(".", 1)[-1]


def check_grad_dtype(name: str, array: Any) -> None:
    """Gradients exist for floating dtypes only (PyTorch's rule); TypeError otherwise."""
    if not dtype_is(namespace_of(array), array.dtype, "real floating"):
        raise TypeError(
            f"{name}: only floating-point tensors can require gradients; got dtype {dtype_name(array.dtype)} "
            "(make it floating, e.g. dtype='float32')"
        )


def check_dtype_matches(name: str, x: "Tensor", weight: "Tensor", what: str = "weight") -> None:
    """PyTorch's rule where an input meets a layer's parameters: one dtype, no silent promotion
    (an int64 or float64 batch into a float32 model is a mistake, not a request for float64).

    Raises:
        TypeError: naming both dtypes and the two ways to make them agree.
    """
    got, want = x.data.dtype, weight.data.dtype
    if got is want:
        return
    check_same_device([x.data, weight.data])  # dtypes of two libraries do not compare
    if got == want:
        return
    fix = f"convert the input with x.astype({dtype_name(want)!r})"
    if dtype_is(namespace_of(x.data), got, "real floating"):
        fix += f", or the model with model.to({dtype_name(got)!r})"
    raise TypeError(
        f"{name}: input has dtype {dtype_name(got)} and {what} has dtype {dtype_name(want)}; expected the input "
        f"in the {what}'s dtype: {fix}"
    )


class Function:
    """A primitive: ``forward`` on raw arrays saves what ``backward`` (its VJP) needs.

    Subclasses set hyperparameters (axes, shapes) in ``__init__`` and implement::

        forward(self, xp, *arrays) -> array
        backward(self, grad) -> tuple with one gradient (or None) per input

    ``self.needs_grad[i]`` says whether input i wants a gradient, so backward can skip work.
    Inputs that are not Tensors (Python scalars, label arrays) are constants.
    """

    inputs: tuple | None = None
    needs_grad: list[bool] = []
    xp: Any = None
    # creation order of recorded Functions: every input's creator has a smaller number, so
    # the backward pass runs Functions from the highest number down (a topological order)
    sequence: int = -1
    # positions of the inputs whose arrays (or views of them) forward keeps for backward:
    # backward raises if one of them was changed in place after this op ran (increment_version)
    saves: tuple[int, ...] = ()
    # the output may share input 0's memory (reshape, transpose, slice): where an op saved
    # this output, a change of input 0 counts as a change of the saved array
    view: bool = False

    def __call__(self, *args: Any) -> "Tensor":
        # one pass over the arguments: this runs for every op, so it is kept lean
        arrays, needs, first = [], [], None
        for arg in args:
            if isinstance(arg, Tensor):
                data = arg.data
                if first is None:
                    first = data
                elif type(data) is not type(first) or (type(data) not in _ONE_DEVICE and data.device != first.device):
                    # raises, unless it is only a NumPy scalar beside an array
                    check_same_device([a.data for a in args if isinstance(a, Tensor)])
                arrays.append(data)
                needs.append(arg.requires_grad)
            else:
                arrays.append(arg)
                needs.append(False)
        xp = self.xp = _NAMESPACES.get(type(first)) or namespace_of(first)
        self.needs_grad = needs
        if type(first) in _SCOPED:
            with _backends.owner(first).device_scope(first):
                output = Tensor(self.forward(xp, *arrays))
        else:
            output = Tensor(self.forward(xp, *arrays))
        if _grad_enabled and True in needs:
            output.requires_grad = True
            output._creator = self
            self.inputs = args
            self.sequence = next(_sequence)
        return output

    def forward(self, xp: Any, *arrays: Array) -> Array:
        raise NotImplementedError

    def backward(self, grad: Array) -> tuple[Array | None, ...]:
        raise NotImplementedError

    def reads_saved(self, index: int) -> bool:
        """Whether backward reads the values of saved input ``index``, given ``needs_grad``
        (x * y reads x only for y's gradient, as PyTorch saves it). Asked once a change is seen."""
        return True

    def release(self) -> None:
        """Drop inputs and saved arrays once the backward pass has used them."""
        sequence = self.sequence
        self.__dict__.clear()
        self.inputs, self.sequence = None, sequence  # the number stays: it orders the walk

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class Tensor:
    """An array of the active backend, with an optional gradient and the op that made it.

    Its arithmetic operators and the methods that are ops (``x + y``, ``x @ w``, ``x.sum()``,
    ``x.exp()``, ``x.reshape(...)``, ``x.mT``) are attached by gdnet.ops, beside each op's
    function (``ops.TENSOR_METHODS`` lists them); importing gdnet imports it.

    Attributes:
        data: the raw array (numpy, cupy, torch or array_api_strict).
        grad: a Tensor of ``data``'s shape after ``backward()`` (leaves only), else None.
        requires_grad: whether operations on this tensor are recorded.
        _version: increases with every in-place change (``increment_version``); a number of the
            graph's creation sequence, so it is not a count of changes as PyTorch's is.
    """

    # _post_accumulate_hooks is set only on leaves that get a hook (unset slots cost nothing)
    __slots__ = ("data", "grad", "requires_grad", "_creator", "_post_accumulate_hooks", "_version",
                 "__weakref__")
    __array_priority__ = 1000  # so numpy scalars on the left defer to Tensor's operators

    def __init__(self, data: Array, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = requires_grad
        self._creator: Function | None = None
        self._version = 0

    # -- array facts -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return self.data.device

    @property
    def size(self) -> int:
        n = 1
        for d in self.data.shape:
            n *= d
        return n

    @property
    def xp(self):
        return namespace_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._creator is None

    def __len__(self) -> int:
        return self.data.shape[0]

    def item(self) -> float | int | bool:
        """The single value as a Python number (reads the device: a synchronisation)."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element; got shape {self.shape}")
        xp = self.xp
        value = xp.reshape(self.data, ())
        if xp.isdtype(self.dtype, "bool"):
            return bool(value)
        if xp.isdtype(self.dtype, "integral"):
            return int(value)
        return float(value)

    def numpy(self):
        """A host NumPy copy of the data (a device->host transfer)."""
        return _backends.owner(self.data).to_host(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if self._creator is not None and not flag:
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; use detach()")
        if flag:
            check_grad_dtype("requires_grad_", self.data)
        self.requires_grad = flag
        return self

    def __repr__(self) -> str:
        """PyTorch's brief form: ``tensor(0.4650, requires_grad=True)``; values to 4 decimals,
        arrays over 1000 elements summarised with their shape; the dtype where it is not
        float32, int64 or bool, the device where it is not host memory."""
        from .backends.host import device_label, format_values

        data = self.data
        try:
            text, summarised = format_values(data, prefix="tensor(")
        except (RuntimeError, TypeError, ValueError, NotImplementedError):  # unreadable values (a meta device)
            text, summarised = "...", True
        facts = [text]
        if summarised or (self.size == 0 and data.ndim != 1):
            facts.append(f"shape={self.shape}")
        name = dtype_name(data.dtype)
        if name not in ("float32", "int64", "bool"):
            facts.append(f"dtype={name}")
        device = device_label(data)
        if device is not None:
            facts.append(f"device={device}")
        if self.requires_grad:
            facts.append("requires_grad=True")
        return f"tensor({', '.join(facts)})"

    # -- differentiation ---------------------------------------------------------------------
    def backward(self, grad: "Tensor | Array | None" = None, *, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        First-order only: the VJPs run on raw arrays and record nothing, so the gradients are
        plain values (no graph of their own to differentiate again) and the pass frees what
        the forward saved as it goes. Gradient descent needs no more; a Hessian-vector product
        or a gradient penalty would need every VJP written in recorded Tensor ops.

        Args:
            grad: the gradient of some scalar with respect to this tensor (same shape);
                may be left out when this tensor has one element (it is then 1).
            create_graph: PyTorch's switch for higher-order gradients; only False is possible.
        Raises:
            RuntimeError: nothing to differentiate, or a non-scalar without ``grad``.
            NotImplementedError: ``create_graph=True``.
        """
        if create_graph:
            raise NotImplementedError(
                "backward(create_graph=True): gdnet's backward is first-order (its VJPs run on raw arrays and "
                "record no graph), so gradients of gradients are not available; use PyTorch for those"
            )
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no parameter or input with "
                "requires_grad=True was used to compute it (or it was computed under no_grad())"
            )
        data = self.data
        if grad is None:
            if data.ndim != 0 and self.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element output; got shape "
                    f"{self.shape}: pass grad= of that shape, or reduce first (e.g. .sum())"
                )
            seed = namespace_of(data).ones(data.shape, dtype=data.dtype, device=data.device)
        else:
            seed = grad.data if isinstance(grad, Tensor) else grad
            if tuple(seed.shape) != self.shape:
                raise ValueError(f"grad has shape {tuple(seed.shape)}; expected {self.shape}")
        if self._creator is None:
            _accumulate_leaf(self, seed)
            if getattr(self, "_post_accumulate_hooks", None):
                _in_pass(lambda: _call_hooks(self))
            return
        if type(data) in _SCOPED:
            with device_scope(data):
                _run_backward(self._creator, seed)
        else:
            _run_backward(self._creator, seed)

    def register_post_accumulate_grad_hook(self, hook: Callable[["Tensor"], None]) -> "RemovableHandle":
        """Call ``hook(self)`` in every backward pass once this leaf's ``.grad`` holds all of
        that pass's gradient (after the last contribution is added), as PyTorch's hook of the
        same name. Hooks run in registration order; a hook may read ``.grad`` and start work
        with it (DistributedDataParallel starts a bucket's all-reduce), and may queue work for
        the end of the pass with ``queue_callback``.

        Returns:
            a handle whose ``remove()`` unregisters the hook.
        Raises:
            RuntimeError: on a tensor that is not a leaf or does not require grad.
        """
        global _hooked_leaves
        if self._creator is not None:
            raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors (parameters); "
                               "this tensor is an operation's result")
        if not self.requires_grad:
            raise RuntimeError("cannot register a post-accumulate-grad hook on a tensor that does not require grad")
        hooks = getattr(self, "_post_accumulate_hooks", None)
        if hooks is None:
            hooks = self._post_accumulate_hooks = {}
            _hooked_leaves += 1
        key = next(_hook_keys)
        hooks[key] = hook
        return RemovableHandle(self, key)

    # -- operators and methods: those of ops are attached by gdnet.ops (its TENSOR_METHODS) ----
    # comparisons give boolean tensors outside the graph
    def _compare(self, other, name):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(getattr(self.data, name)(other))

    def __lt__(self, other):
        return self._compare(other, "__lt__")

    def __le__(self, other):
        return self._compare(other, "__le__")

    def __gt__(self, other):
        return self._compare(other, "__gt__")

    def __ge__(self, other):
        return self._compare(other, "__ge__")

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, "__eq__")

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, "__ne__")

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def argmax(self, axis=None, *, dim=None):
        """Indices of the largest values along ``axis`` (or ``dim``; default the last)."""
        return Tensor(self.xp.argmax(self.data, axis=spelling("argmax", axis, dim, -1)))

    def astype(self, dtype):
        """A copy in another dtype (a new leaf: casts are not differentiated)."""
        return Tensor(self.xp.astype(self.data, resolve_dtype(self.xp, dtype)))


class RemovableHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, tensor: Tensor, key: int):
        self._tensor, self._key = tensor, key

    def remove(self) -> None:
        global _hooked_leaves
        hooks = getattr(self._tensor, "_post_accumulate_hooks", None)
        if hooks is None or hooks.pop(self._key, None) is None:
            return
        if not hooks:
            del self._tensor._post_accumulate_hooks
            _hooked_leaves -= 1


def queue_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` once when the backward pass now running has finished (after every
    gradient is accumulated and every hook has run), as PyTorch's engine ``queue_callback``.

    Raises:
        RuntimeError: outside a backward pass (call it from a hook).
    """
    if _final_callbacks is None:
        raise RuntimeError("queue_callback() can only be called during a backward pass (from a hook)")
    _final_callbacks.append(callback)


def resolve_dtype(xp: Any, dtype: Any):
    """'float32' / xp.float32 / None -> an xp dtype (None -> None)."""
    if dtype is None or not isinstance(dtype, str):
        return dtype
    try:
        return getattr(xp, dtype)
    except AttributeError:
        raise ValueError(f"unknown dtype {dtype!r}; expected e.g. 'float32', 'float64', 'int64'") from None


def sum_to(xp: Any, grad: Array, shape: Sequence[int]) -> Array:
    """Sum ``grad`` down to ``shape``: the VJP of broadcasting an array of ``shape`` up to grad's
    shape. The backward pass calls it wherever a gradient arrives in another shape than its
    input's, so primitives never undo broadcasting themselves.

    Raises:
        RuntimeError: ``shape`` does not broadcast to grad's shape (a primitive's backward gave
            a gradient of the wrong shape).
    """
    shape, have = tuple(shape), tuple(grad.shape)
    if have == shape:
        return grad
    lead = len(have) - len(shape)
    if lead < 0 or any(n != 1 and n != have[lead + i] for i, n in enumerate(shape)):
        raise RuntimeError(
            f"a gradient of shape {have} for an input of shape {shape}: a primitive's backward must give each "
            "input a gradient of its shape or of a shape it broadcasts to"
        )
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and have[lead + i] != 1)
    if axes:
        grad = xp.sum(grad, axis=axes)
    return xp.reshape(grad, shape)


def _accumulate_leaf(leaf: Tensor, grad: Array) -> None:
    if leaf.grad is None:
        leaf.grad = Tensor(grad)
    else:
        # a new array, never in place: grad arrays may be shared between inputs
        leaf.grad = Tensor(leaf.grad.data + grad)


def _hook_counts(root: Function) -> dict[Tensor, int]:
    """For each hooked leaf the graph of ``root`` reaches: how many gradients backward will hand
    it, so its hooks run once the last has arrived (PyTorch's engine counts dependencies too)."""
    counts: dict[Tensor, int] = {}
    seen, stack = {root}, [root]
    while stack:
        fn = stack.pop()
        for arg, wanted in zip(fn.inputs or (), fn.needs_grad):
            if not wanted:
                continue
            creator = arg._creator
            if creator is None:
                if getattr(arg, "_post_accumulate_hooks", None):
                    counts[arg] = counts.get(arg, 0) + 1
            elif creator not in seen:
                seen.add(creator)
                stack.append(creator)
    return counts


def _call_hooks(leaf: Tensor) -> None:
    for hook in list(getattr(leaf, "_post_accumulate_hooks", {}).values()):
        hook(leaf)


def _in_pass(body: Callable[[], None]) -> None:
    """Run one backward pass (``body``), then the callbacks its hooks queued."""
    global _final_callbacks
    previous, _final_callbacks = _final_callbacks, []
    try:
        body()
        callbacks = _final_callbacks
    finally:
        _final_callbacks = previous
    for callback in callbacks:
        callback()


def increment_version(tensors: "Tensor | Iterable[Tensor]") -> None:
    """Record that ``tensors`` (one Tensor or an iterable of them) were changed in place, as
    ``torch.autograd.graph.increment_version``.

    Whatever changes a tensor's values in place calls it: optimizer steps (which write into the
    arrays), ``Module.load_state_dict``, the ``nn.init`` functions and the collectives (which
    PyTorch runs in place). Backward through an op recorded before the change that saved the tensor (or a view
    of it) then raises RuntimeError instead of returning a gradient of the old values.
    """
    version = next(_sequence)  # above every op recorded so far, below every later one
    for tensor in (tensors,) if isinstance(tensors, Tensor) else tensors:
        tensor._version = version


def _check_saved(fn: Function, inputs: tuple) -> None:
    """Raise if an input ``fn`` saved, or the base of that view, changed in place after ``fn`` ran."""
    for index in fn.saves:
        tensor = inputs[index] if index < len(inputs) else None
        while isinstance(tensor, Tensor):
            if tensor._version > fn.sequence:
                if not fn.reads_saved(index):
                    break
                name = type(fn).__name__
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: input {index} of {name} (shape {inputs[index].shape}) was changed in place (an "
                    f"optimizer step, load_state_dict, an nn.init function) after {name} saved it for backward; "
                    "call backward() before changing it, or run the forward pass again after the change"
                )
            creator = tensor._creator  # a view's values change with its base's
            tensor = creator.inputs[0] if creator is not None and creator.view and creator.inputs else None


def _run_backward(root: Function, seed: Array) -> None:
    """Hand ``seed`` to ``root`` and walk back: each Function runs once all the gradient for its
    output has arrived, which is when every Function with a higher sequence number is done."""
    if not _hooked_leaves:  # no hooks: no bookkeeping, and nothing can queue a callback
        _walk(root, seed, None)
        return
    counts = _hook_counts(root)
    _in_pass(lambda: _walk(root, seed, counts))


def _walk(root: Function, seed: Array, counts: dict[Tensor, int] | None) -> None:
    pending: dict[Function, Array] = {root: seed}  # gradient summed so far for each output
    queue = [(-root.sequence, root)]
    while queue:
        fn = heappop(queue)[1]
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(
                "backward() through a graph that was already freed by an earlier backward(); "
                "run the forward pass again"
            )
        if fn.saves:
            _check_saved(fn, inputs)
        for arg, arg_grad, wanted in zip(inputs, fn.backward(pending.pop(fn)), fn.needs_grad):
            if not wanted or arg_grad is None:
                continue
            if arg_grad.shape != arg.data.shape:  # the op broadcast this input: the one place that undoes it
                arg_grad = sum_to(fn.xp, arg_grad, arg.data.shape)
            creator = arg._creator
            if creator is None:
                if arg.grad is None:
                    arg.grad = Tensor(arg_grad)  # a leaf's first gradient: _accumulate_leaf, inlined
                else:
                    _accumulate_leaf(arg, arg_grad)
                if counts and arg in counts:
                    counts[arg] -= 1
                    if not counts[arg]:  # its last gradient of this pass
                        _call_hooks(arg)
            elif creator in pending:
                pending[creator] = pending[creator] + arg_grad
            else:
                pending[creator] = arg_grad
                heappush(queue, (-creator.sequence, creator))
        fn.release()
