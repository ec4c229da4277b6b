"""Continuous integrate-and-fire (Dong & Xu 2020), as Paraformer uses it.

The integration is written as interval overlaps instead of a loop over frames: with
c_t = alpha_1 + ... + alpha_t (float64), frame t gives token j the weight
|[c_{t-1}, c_t] ∩ [j, j + 1]|. Token j fires at the first frame where c_t reaches j + 1, and its
embedding is the weighted sum of frames. The same tensor ops run in training, in inference and
in the exported ONNX graph.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from narvox.models.attention import padding_mask


class CifPredictor(nn.Module):
    """alpha_t = sigmoid(Linear(relu(conv(h) + h))): how much of a token frame t carries."""

    def __init__(self, d_model: int, kernel: int = 3, tail_threshold: float = 0.45):
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2)
        self.proj = nn.Linear(d_model, 1)
        self.tail_threshold = tail_threshold

    def alphas(self, hidden: Tensor, lengths: Tensor) -> Tensor:
        x = torch.relu(self.conv(hidden.transpose(1, 2)).transpose(1, 2) + hidden)
        alphas = torch.sigmoid(self.proj(x)).squeeze(-1)
        return alphas * padding_mask(lengths, hidden.size(1)).to(alphas.dtype)

    def add_tail(self, hidden: Tensor, alphas: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Append a silent frame carrying `tail_threshold` after each utterance's last frame, so a
        nearly complete last token still fires at inference."""
        hidden = nn.functional.pad(hidden, (0, 0, 0, 1))
        alphas = nn.functional.pad(alphas, (0, 1))
        tail = torch.arange(alphas.size(1), device=alphas.device)[None, :] == lengths[:, None]
        return hidden, alphas + tail.to(alphas.dtype) * self.tail_threshold


def cif(hidden: Tensor, alphas: Tensor, num_tokens: Tensor) -> tuple[Tensor, Tensor]:
    """Integrate frames into tokens.

    hidden [B, T, D], alphas [B, T] (zero on padding), num_tokens [B] ints.
    Returns token embeddings [B, L, D] with L = max(num_tokens) (zero past each num_tokens) and
    the frame at which each token fired [B, L].
    """
    total = torch.cumsum(alphas.double(), dim=1)                      # c_t
    before = total - alphas.double()                                  # c_{t-1}
    j = torch.arange(num_tokens.max(), device=hidden.device).double()  # token index
    weight = (torch.minimum(total[:, :, None], j + 1) - torch.maximum(before[:, :, None], j)).clamp(min=0)
    weight = weight * (j[None, None, :] < num_tokens[:, None, None].double())
    embeddings = torch.einsum("btl,btd->bld", weight.to(hidden.dtype), hidden)
    # the frame where c_t first reaches j + 1 (with a little slack for float error)
    fire_frames = (total[:, :, None] < j + 1 - 1e-4).sum(1).clamp(max=alphas.size(1) - 1)
    return embeddings, fire_frames
