"""Embedding: a learned vector per index, looked up by integer input."""

from __future__ import annotations

from typing import Any

from .._creation import as_array_like
from ..autograd import Tensor
from . import functional as F
from . import init
from .module import Module, check_sizes, new_parameter


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, indexed by integers.

    The lookup's backward needs no scatter: the gradient reaches the table through a one-hot
    matrix product (``ops.take``), so rows that several indices picked add up their gradients.

    Args:
        num_embeddings: rows in the table (the vocabulary size).
        embedding_dim: size of each vector.
        padding_idx: a row that starts at zero and receives no gradient (for padding tokens);
            negative values count from the end, as in PyTorch.

    Shape:
        input (*) integer indices in [0, num_embeddings) -> output (*, embedding_dim).
        weight (num_embeddings, embedding_dim), initialised N(0, 1) as PyTorch.

    Example:
        >>> embed = gd.nn.Embedding(1000, 32, padding_idx=0)
        >>> embed(gd.tensor([[4, 8, 0], [15, 16, 23]])).shape
        (2, 3, 32)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        padding_idx = F.padding_row("Embedding", padding_idx, num_embeddings)
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = new_parameter((num_embeddings, embedding_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx, :] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None) -> "Embedding":
        """An Embedding holding a copy of ``embeddings`` (num_embeddings, embedding_dim), on the
        active backend; ``freeze`` leaves it out of training (requires_grad False)."""
        shape = tuple(getattr(embeddings, "shape", ()))
        if len(shape) != 2:
            raise ValueError(
                f"Embedding.from_pretrained: expected a 2-D (num_embeddings, embedding_dim) table; got shape {shape}"
            )
        layer = cls(shape[0], shape[1], padding_idx)
        layer.weight.data = as_array_like(embeddings, layer.weight.data)
        layer.weight.requires_grad = not freeze
        return layer

    def forward(self, input: Any) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else f"{text}, padding_idx={self.padding_idx}"
