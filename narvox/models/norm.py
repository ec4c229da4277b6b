"""LayerNorm, plain or set by a conditioning vector, behind one call."""
from __future__ import annotations

from torch import Tensor, nn


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are projected from a conditioning vector (AdaLN): how
    VALL-E's NAR stage is told which codebook it predicts and MaskGCT's which step it is at.

    The projection starts at zero, so an untrained layer is a plain LayerNorm (scale 1, shift 0)
    and the conditioning is learned from there instead of perturbing a fresh model."""

    def __init__(self, d_model: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.proj = nn.Linear(cond_dim, 2 * d_model)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x [B, T, D]; cond [B, C] (one vector per sequence) or [B, T, C] (one per position)."""
        if cond.dim() == 2:
            cond = cond.unsqueeze(1)
        scale, shift = self.proj(cond).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift


def make_norm(d_model: int, cond_dim: int | None) -> nn.Module:
    """An AdaptiveLayerNorm when a conditioning size is given, else a plain LayerNorm."""
    return nn.LayerNorm(d_model) if cond_dim is None else AdaptiveLayerNorm(d_model, cond_dim)


def apply_norm(norm: nn.Module, x: Tensor, cond: Tensor | None) -> Tensor:
    """Run a norm from `make_norm`. A conditioning vector goes to an adaptive norm and only there:
    dropping it, or asking for it where a model was built without it, is a bug to report."""
    if isinstance(norm, AdaptiveLayerNorm) != (cond is not None):
        raise ValueError("cond is given exactly when the blocks are built with a cond_dim")
    return norm(x) if cond is None else norm(x, cond)
