"""Transformer decoder layers: causal with a KV cache (AR decoding) or bidirectional (NAR)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from narvox.models.attention import FeedForward, KVCache, MultiHeadAttention


@dataclass
class DecoderConfig:
    d_model: int = 144
    n_heads: int = 4
    d_ff: int = 576
    n_layers: int = 3
    dropout: float = 0.1


class DecoderLayer(nn.Module):
    """Pre-norm self-attention, cross-attention to the encoder, feed-forward."""

    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.self_attn, self.norm_self = MultiHeadAttention(c.d_model, c.n_heads, c.dropout), nn.LayerNorm(c.d_model)
        self.cross_attn, self.norm_cross = MultiHeadAttention(c.d_model, c.n_heads, c.dropout), nn.LayerNorm(c.d_model)
        self.ff, self.norm_ff = FeedForward(c.d_model, c.d_ff, c.dropout, nn.ReLU), nn.LayerNorm(c.d_model)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, self_mask: Tensor | None, memory: Tensor | None,
                memory_mask: Tensor | None, self_cache: KVCache | None = None,
                cross_kv: KVCache | None = None) -> tuple[Tensor, KVCache]:
        """Returns the output and the self-attention keys/values (the cache for the next step)."""
        y, new_cache = self.self_attn(self.norm_self(x), mask=self_mask, cache=self_cache)
        x = x + self.dropout(y)
        y, _ = self.cross_attn(self.norm_cross(x), memory=memory, mask=memory_mask, static_kv=cross_kv)
        x = x + self.dropout(y)
        return x + self.dropout(self.ff(self.norm_ff(x))), new_cache
