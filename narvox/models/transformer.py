"""Pre-norm transformer blocks shared by every family: encoders, NAR and AR decoders.

One layer class serves them all (as whisper's `ResidualAttentionBlock(cross_attention=...)`):
cross-attention exists only when asked for, causal or bidirectional is the mask the caller gives,
and with a `cond_dim` every norm is an AdaptiveLayerNorm. The stack runs whole sequences
(`forward`) or extends cached ones (`step`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from narvox.models.attention import FeedForward, KVCache, MultiHeadAttention, causal_mask
from narvox.models.norm import apply_norm, make_norm


@dataclass
class DecoderConfig:
    """Sizes of a TransformerStack (named for the ASR decoders whose configs hold them)."""
    d_model: int = 144
    n_heads: int = 4
    d_ff: int = 576
    n_layers: int = 3
    dropout: float = 0.1


class TransformerLayer(nn.Module):
    """Self-attention, optional cross-attention to a memory, feed-forward: pre-norm residuals."""

    def __init__(self, c: DecoderConfig, cross_attention: bool = False, cond_dim: int | None = None):
        super().__init__()
        # These names and this order are those of the trained checkpoints and shipped bundles
        # (parameter names) and of their optimiser states (parameter order).
        attention = lambda: MultiHeadAttention(c.d_model, c.n_heads, c.dropout)
        norm = lambda: make_norm(c.d_model, cond_dim)
        self.self_attn, self.norm_self = attention(), norm()
        self.cross_attn, self.norm_cross = (attention(), norm()) if cross_attention else (None, None)
        self.ff, self.norm_ff = FeedForward(c.d_model, c.d_ff, c.dropout, nn.ReLU), norm()
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, memory: Tensor | None = None,
                memory_mask: Tensor | None = None, cache: KVCache | None = None,
                cross_kv: KVCache | None = None, cond: Tensor | None = None) -> tuple[Tensor, KVCache]:
        """x [B, T, D]; mask: bool broadcastable to [B, T, cached + T], True where attention is
        allowed. A memory [B, S, D] or its keys/values `cross_kv` (with memory_mask broadcastable
        to [B, T, S]) is required with cross-attention and refused without it: a missing memory
        must not silently turn cross-attention into a second, unmasked self-attention.
        Returns the output and the self-attention keys/values (`cache` grown by T)."""
        if (memory is not None or cross_kv is not None) != (self.cross_attn is not None):
            raise ValueError("a layer with cross-attention needs a memory; one without takes none")
        y, new_cache = self.self_attn(apply_norm(self.norm_self, x, cond), mask=mask, cache=cache)
        x = x + self.dropout(y)
        if self.cross_attn is not None:
            y, _ = self.cross_attn(apply_norm(self.norm_cross, x, cond), memory=memory, mask=memory_mask,
                                   static_kv=cross_kv)
            x = x + self.dropout(y)
        return x + self.dropout(self.ff(apply_norm(self.norm_ff, x, cond))), new_cache


def _layer_kv(kv: KVCache | None, i: int) -> KVCache | None:
    return None if kv is None else (kv[0][i], kv[1][i])


class TransformerStack(nn.Module):
    """Layers and the final norm. Positions are left to the caller, as families differ
    (sinusoidal for ASR's decoder, none for Paraformer's, per segment for a prefix TTS LM).

    Caches hold every layer's keys/values stacked, (keys, values) [n_layers, B, heads, t,
    head_dim], so an exported step takes and returns a fixed number of tensors."""

    def __init__(self, c: DecoderConfig, cross_attention: bool = False, cond_dim: int | None = None):
        super().__init__()
        self.cross_attention = cross_attention
        self.layers = nn.ModuleList(TransformerLayer(c, cross_attention, cond_dim) for _ in range(c.n_layers))
        self.norm = make_norm(c.d_model, cond_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None, memory: Tensor | None = None,
                memory_mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        """Whole sequences x [B, T, D] -> [B, T, D]. mask: bool broadcastable to [B, T, T], True
        where attention is allowed: `causal_mask(T)[None]` for AR training, a padding mask
        [B, 1, T] for bidirectional layers."""
        for layer in self.layers:
            x, _ = layer(x, mask, memory, memory_mask, cond=cond)
        return apply_norm(self.norm, x, cond)

    def cross_kv(self, memory: Tensor) -> list[KVCache]:
        """Each layer's cross-attention keys/values of memory [B, S, D] (MultiHeadAttention.
        project_static_kv), computed once for `step`. A list, not a stack: an exported step
        takes each as an input of its own, as slicing a layer out of a stack copies it."""
        if not self.cross_attention:
            raise ValueError("this stack has no cross-attention")
        return [layer.cross_attn.project_static_kv(memory) for layer in self.layers]

    def step(self, x: Tensor, cache: KVCache | None = None, cross_kv: list[KVCache] | None = None,
             memory_mask: Tensor | None = None, cond: Tensor | None = None,
             mask: Tensor | None = None) -> tuple[Tensor, KVCache]:
        """Extend cached sequences by x [B, n, D] (one token, or a prompt at once). Returns the
        output [B, n, D] and the cache grown by n; `cache` None is the empty one.
        mask: bool broadcastable to [B, n, past + n], True where attention is allowed; by default
        causal (each new position sees the cached ones and the new ones up to itself). A model
        with a bidirectional prefix or padded prompts inside its cache passes its own."""
        past = 0 if cache is None else cache[0].size(3)
        if mask is None:
            mask = causal_mask(x.size(1), past, x.device)[None]
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            x, (k, v) = layer(x, mask, memory_mask=memory_mask, cache=_layer_kv(cache, i),
                              cross_kv=None if cross_kv is None else cross_kv[i], cond=cond)
            new_k.append(k)
            new_v.append(v)
        return apply_norm(self.norm, x, cond), (torch.stack(new_k), torch.stack(new_v))


def rename_keys_on_load(module: nn.Module, renames: dict[str, str]) -> None:
    """Let `module` load state dicts saved under former submodule names ({old prefix: new prefix},
    relative to the module): checkpoints and bundles from before it used a TransformerStack.
    A partial of a module-level function, not a closure, so the module stays picklable."""
    module.register_load_state_dict_pre_hook(functools.partial(_rename_keys, renames=renames))


def _rename_keys(module: nn.Module, state_dict: dict, prefix: str, *_, renames: dict[str, str]) -> None:
    for key in list(state_dict):
        for old, new in renames.items():
            if key.startswith(prefix + old):
                state_dict[prefix + new + key.removeprefix(prefix + old)] = state_dict.pop(key)
                break
