"""Conformer encoder (Gulati et al. 2020) with convolutional or LFR-linear input layers."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from narvox.models.attention import FeedForward, MultiHeadAttention, PositionalEncoding, padding_mask


@dataclass
class EncoderConfig:
    input_dim: int = 80
    d_model: int = 144
    n_heads: int = 4
    d_ff: int = 576
    n_layers: int = 6
    conv_kernel: int = 15
    dropout: float = 0.1
    input_layer: str = "conv2d4"   # conv2d4: 4x subsampling of fbank; linear: LFR input
    subsampling_channels: int = 64


class Conv2dSubsampling4(nn.Module):
    """Two stride-2 3x3 convolutions: T -> ((T - 1) // 2 - 1) // 2 frames."""

    def __init__(self, input_dim: int, d_model: int, channels: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, 2), nn.ReLU())
        self.proj = nn.Linear(channels * (((input_dim - 1) // 2 - 1) // 2), d_model)

    @staticmethod
    def output_lengths(lengths: Tensor) -> Tensor:
        return ((lengths - 1) // 2 - 1) // 2

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv(x.unsqueeze(1))  # [B, C, T', F']
        b, c, t, f = x.shape
        return self.proj(x.permute(0, 2, 1, 3).reshape(b, t, c * f)), self.output_lengths(lengths)


class LinearInput(nn.Module):
    """Paraformer's LFR features are already 60 ms frames: project without subsampling."""

    def __init__(self, input_dim: int, d_model: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(input_dim, d_model), nn.LayerNorm(d_model))

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.proj(x), lengths


class ConvModule(nn.Module):
    def __init__(self, d_model: int, kernel: int, dropout: float):
        super().__init__()
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, frame_mask: Tensor) -> Tensor:
        x = nn.functional.glu(self.pointwise_in(x), dim=-1)
        x = x.masked_fill(~frame_mask.unsqueeze(-1), 0.0)  # padding must not leak into real frames
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        return self.dropout(self.pointwise_out(nn.functional.silu(self.norm(x))))


class ConformerBlock(nn.Module):
    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.ff1, self.ff2 = FeedForward(c.d_model, c.d_ff, c.dropout), FeedForward(c.d_model, c.d_ff, c.dropout)
        self.norm_ff1, self.norm_ff2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attn, self.norm_attn = MultiHeadAttention(c.d_model, c.n_heads, c.dropout), nn.LayerNorm(c.d_model)
        self.conv, self.norm_conv = ConvModule(c.d_model, c.conv_kernel, c.dropout), nn.LayerNorm(c.d_model)
        self.norm_out = nn.LayerNorm(c.d_model)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, frame_mask: Tensor) -> Tensor:
        x = x + 0.5 * self.dropout(self.ff1(self.norm_ff1(x)))
        x = x + self.dropout(self.attn(self.norm_attn(x), mask=frame_mask[:, None, :])[0])
        x = x + self.conv(self.norm_conv(x), frame_mask)
        x = x + 0.5 * self.dropout(self.ff2(self.norm_ff2(x)))
        return self.norm_out(x)


class GlobalCMVN(nn.Module):
    """(x + neg_mean) * inv_stddev inside the graph, for runtimes that feed raw fbank."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("neg_mean", torch.zeros(dim))
        self.register_buffer("inv_stddev", torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return (x + self.neg_mean) * self.inv_stddev


class ConformerEncoder(nn.Module):
    def __init__(self, c: EncoderConfig, cmvn: bool = False):
        super().__init__()
        self.config = c
        self.cmvn = GlobalCMVN(c.input_dim) if cmvn else None
        if c.input_layer == "conv2d4":
            self.input_layer = Conv2dSubsampling4(c.input_dim, c.d_model, c.subsampling_channels)
            self.subsampling = 4
        elif c.input_layer == "linear":
            self.input_layer, self.subsampling = LinearInput(c.input_dim, c.d_model), 1
        else:
            raise ValueError(f"unknown input_layer '{c.input_layer}' (conv2d4 | linear)")
        self.pos = PositionalEncoding(c.d_model, c.dropout)
        self.blocks = nn.ModuleList(ConformerBlock(c) for _ in range(c.n_layers))

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return Conv2dSubsampling4.output_lengths(lengths) if self.subsampling == 4 else lengths

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """feats [B, T, input_dim], lengths [B] -> hidden [B, T', d_model], lengths [B]."""
        if self.cmvn is not None:
            feats = self.cmvn(feats)
        x, lengths = self.input_layer(feats, lengths)
        x = self.pos(x)
        frame_mask = padding_mask(lengths, x.size(1))
        for block in self.blocks:
            x = block(x, frame_mask)
        # zero the padded frames: what reads the output next (CIF's convolution, its tail frame)
        # must see the same zeros a row alone would have, whatever its batch-mates
        return x * frame_mask.unsqueeze(-1).to(x.dtype), lengths
