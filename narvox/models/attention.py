"""Multi-head attention on `scaled_dot_product_attention`, with an explicit KV cache.

Hand-written (not nn.MultiheadAttention) so ONNX export keeps every length dynamic, and so the
cache is a pair of plain tensors that an exported decoder step can take in and give back.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KVCache = tuple[Tensor, Tensor]  # keys, values: [B, heads, T, head_dim]


def padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """[B] lengths -> [B, T] bool, True on real frames."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def causal_mask(length: int, past: int = 0, device=None) -> Tensor:
    """[T, past + T] bool, True where query t, at position past + t after `past` cached positions,
    may look at key s (s <= past + t). Built from aranges so an exported step keeps both
    lengths dynamic."""
    queries = torch.arange(length, device=device) + past
    return torch.arange(past + length, device=device)[None, :] <= queries[:, None]


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {n_heads} heads")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def project_kv(self, x: Tensor) -> KVCache:
        """Keys and values [B, heads, T, head_dim] of `x` [B, T, D]."""
        return self._split(self.key(x)), self._split(self.value(x))

    def project_static_kv(self, memory: Tensor) -> KVCache:
        """Keys and values of a fixed memory [B, S, D], computed once for step-wise decoding: the
        keys scaled by 1/sqrt(head_dim) and transposed [B, heads, head_dim, S], so a step's
        scores are one matmul; `scaled_dot_product_attention` would transpose and scale every
        key again per token (two copies of the whole memory's keys per step in ONNX Runtime)."""
        k, v = self.project_kv(memory)
        return (k * self.head_dim ** -0.5).transpose(2, 3).contiguous(), v

    def forward(self, x: Tensor, memory: Tensor | None = None, mask: Tensor | None = None,
                cache: KVCache | None = None, static_kv: KVCache | None = None) -> tuple[Tensor, KVCache]:
        """Attend from `x` [B, Tq, D] to `memory` (self-attention when None).

        mask: bool, broadcastable to [B, Tq, Tk], True where attention is allowed.
        cache: keys/values of earlier steps, extended by this call's (self-attention decoding).
        static_kv: a fixed memory's keys/values from `project_static_kv` (cross-attention decoding).
        Returns the output and the keys/values attended to (the new cache).
        """
        q = self._split(self.query(x))
        bias = None
        if mask is not None:
            # An additive mask with a finite floor, and rows that may attend to nothing (padding,
            # an empty memory) zeroed after: the same result as a boolean mask, whose export
            # cleans those rows' NaNs with two more passes over every [B, heads, Tq, Tk] score,
            # half the attention time of ONNX Runtime on CPU.
            allowed = mask.unsqueeze(1)
            floor = max(-1e9, torch.finfo(q.dtype).min / 2)
            bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill(~allowed, floor)
        if static_kv is not None:
            k, v = static_kv
            scores = q @ k if bias is None else q @ k + bias
            y = scores.softmax(-1) @ v
        else:
            k, v = self.project_kv(x if memory is None else memory)
            if cache is not None:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0)
        if mask is not None:
            y = y * allowed.any(-1, keepdim=True).to(y.dtype)
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, -1)), (k, v)


def sinusoids(positions: Tensor, d_model: int) -> Tensor:
    """The Transformer's sinusoidal encoding [..., d_model] of integer positions [...]: sin and
    cos interleaved. Computed, not looked up in a table: a table of a few thousand positions
    would be stored in every exported graph (2 MB each at d_model 128 in float16)."""
    div = torch.exp(torch.arange(0, d_model, 2, device=positions.device) * (-math.log(10000.0) / d_model))
    angles = positions[..., None].float() * div
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)


class PositionalEncoding(nn.Module):
    """Sinusoidal absolute positions added to the input.

    The input is not scaled by sqrt(d_model) as in the original Transformer: with pre-norm
    blocks that scaling makes the residual stream ~10x larger than each block's update, and the
    small models trained here then needed several times more steps to leave the CTC plateau."""

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: Tensor | int = 0) -> Tensor:
        """x [B, T, D]; `offset` is the position of x[:, 0] (a tensor in exported decoder steps)."""
        positions = torch.arange(x.size(1), device=x.device) + offset
        return self.dropout(x + sinusoids(positions, self.d_model))


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation=nn.SiLU):
        super().__init__(nn.Linear(d_model, d_ff), activation(), nn.Dropout(dropout),
                         nn.Linear(d_ff, d_model))
