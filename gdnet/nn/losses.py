"""Loss layers: a loss in ``functional.py`` with its settings kept, called as ``loss(input, target)``."""

from __future__ import annotations

from ..autograd import Tensor
from . import functional as F
from .module import Module


class NTXentLoss(Module):
    """SimCLR's NT-Xent contrastive loss (Chen et al., 2020) over two views of a batch.

    See ``functional.nt_xent``: each of the 2N normalized embeddings must pick out its positive
    (the other view of the same example) among the other 2N - 1 by cosine similarity / temperature.

    Args:
        temperature: divides the cosine similarities (default 0.5).
        reduction: "mean" (default), "sum" or "none".

    Shape:
        z1 (N, D), z2 (N, D) -> () or, with reduction "none", (2N,).

    Example:
        >>> loss = gd.nn.NTXentLoss(temperature=0.1)
        >>> loss(gd.randn(8, 16), gd.randn(8, 16)).shape
        ()
    """

    def __init__(self, temperature: float = 0.5, reduction: str = "mean"):
        super().__init__()
        F.check_temperature("NTXentLoss", temperature)
        F._check_reduction(reduction)
        self.temperature, self.reduction = temperature, reduction

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return F.nt_xent(z1, z2, self.temperature, self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
