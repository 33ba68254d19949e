"""Classifiers built from a description: the MLPs and CNNs of the ``gdnet`` command (and of the
checkpoints it writes) and of ``gdnet experiments``.

A network is first a list of layers not yet built, each with the shapes of the parameters and
buffers it will hold, so a description (a checkpoint's, say) can be checked against stored
tensors before anything is allocated.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .data.datasets import IMAGE_SIZE
from .nn.activations import ACTIVATIONS
from .nn.conv import Conv2d, MaxPool2d
from .nn.dropout import Dropout
from .nn.layers import Flatten, Linear, Sequential, Unflatten
from .nn.normalization import BatchNorm2d

IMAGE_SIDE, CLASSES = IMAGE_SIZE[0], 10  # the MNIST family: 28x28 images of 10 classes


def _layers(in_features: int, hidden: Sequence[int], classes: int, activation: str = "relu", init: str = "default",
            dropout: float = 0.0, conv: Sequence[int] = (), side: int = 28) -> list[tuple[Callable[[], Any], dict]]:
    """The layers of ``build_mlp``, not yet built: (a function that builds one, the shapes of the
    parameters and buffers it will hold by name), so a network can be checked before anything
    is allocated."""
    layers: list[tuple[Callable[[], Any], dict]] = []
    act = (ACTIVATIONS[activation], {})
    if conv:
        layers.append((functools.partial(Unflatten, 1, (1, side)), {}))  # one input channel
        channels = 1
        for count in conv:
            vector = (count,)
            layers += [(functools.partial(Conv2d, channels, count, 3, padding=1, init=init),
                        {"weight": (count, channels, 3, 3), "bias": vector}),
                       (functools.partial(BatchNorm2d, count),
                        {"weight": vector, "bias": vector, "running_mean": vector, "running_var": vector,
                         "num_batches_tracked": ()}),
                       act, (functools.partial(MaxPool2d, 2), {})]
            channels, side = count, side // 2
        in_features = channels * side * side
    layers.append((Flatten, {}))
    width = in_features
    for size in hidden:
        layers += [(functools.partial(Linear, width, size, init=init), {"weight": (size, width), "bias": (size,)}), act]
        if dropout:
            layers.append((functools.partial(Dropout, dropout), {}))
        width = size
    layers.append((functools.partial(Linear, width, classes, init=init), {"weight": (classes, width),
                                                                          "bias": (classes,)}))
    return layers


def build_mlp(in_features: int, hidden: Sequence[int], classes: int, activation: str = "relu",
              init: str = "default", dropout: float = 0.0, conv: Sequence[int] = (), side: int = 28) -> Sequential:
    """The model ``gdnet train`` describes, for (N, side, side) images.

    With ``conv`` channel counts, first one block per count: 3x3 Conv2d (padding 1), BatchNorm2d,
    the activation and a 2x2 max-pool. Then Flatten, Linear + activation (+ Dropout when
    ``dropout``) per hidden size, and a Linear to ``classes`` scores.
    """
    return _built(_layers(in_features, hidden, classes, activation, init, dropout, conv, side))


def _built(layers: list[tuple[Callable[[], Any], dict]]) -> Sequential:
    return Sequential(*(build() for build, _ in layers))


def _spec_layers(spec: dict[str, Any]) -> list[tuple[Callable[[], Any], dict]]:
    return _layers(IMAGE_SIDE * IMAGE_SIDE, spec["hidden"], CLASSES, spec["activation"], spec["init"],
                   spec.get("dropout", 0.0), spec.get("conv", ()), IMAGE_SIDE)


def build_from_spec(spec: dict[str, Any]) -> Sequential:
    """``build_mlp`` for the MNIST family from a description (a checkpoint's "network", the
    experiments' settings): hidden, activation, init, and optionally dropout and conv."""
    return _built(_spec_layers(spec))


def spec_shapes(spec: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The parameter and buffer shapes, by PyTorch name, of the model ``build_from_spec(spec)``
    builds, computed without building it."""
    return {f"{index}.{name}": shape for index, (_, tensors) in enumerate(_spec_layers(spec))
            for name, shape in tensors.items()}


def describe_network(spec: dict[str, Any]) -> str:
    """"MLP 784-100-10", or for a CNN "conv32-conv64-MLP 3136-128-10"."""
    conv = list(spec.get("conv", ()))
    side = IMAGE_SIDE
    for _ in conv:
        side //= 2
    in_features = conv[-1] * side * side if conv else IMAGE_SIDE * IMAGE_SIDE
    convs = "".join(f"conv{count}-" for count in conv)
    return f"{convs}MLP {'-'.join(str(n) for n in (in_features, *spec['hidden'], CLASSES))}"
