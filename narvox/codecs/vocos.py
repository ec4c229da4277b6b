"""A Vocos-style codec decoder: ConvNeXt blocks at the frame rate predict an STFT (log magnitude and
phase) that an inverse STFT turns into samples (Siuzdak, "Vocos", arXiv 2306.00814).

Why here: SEANet's decoder upsamples with convolutions that run at every output sample; this one
runs its network at the codec's frame rate only (50 frames/s against 16,000 samples/s), so a
training step costs a fraction of the time and the 2-core budget buys many more of them.

The inverse STFT is written with plain tensor ops (InverseSTFT), so the same code trains in
PyTorch and exports to ONNX, which has no ISTFT.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvNeXtBlock(nn.Module):
    """Depthwise conv over time, LayerNorm, pointwise MLP, scaled residual (Vocos's block, 1-D)."""

    def __init__(self, dim: int, hidden: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, F]
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.down(F.gelu(self.up(y))) * self.scale
        return x + y.transpose(1, 2)


class InverseSTFT(nn.Module):
    """(real, imaginary) [B, 2K, N] of N centred frames -> N * hop samples: inverse real DFT,
    Hann synthesis window, overlap-add, divided by the overlap of the squared window: what
    `torch.istft(center=True)` computes, so a Hann-windowed STFT comes back exactly (also at the
    edges, where fewer frames overlap).

    Written with matmuls, gathers and pads, which ONNX has (it has no ISTFT, and the exporter
    takes no complex tensors). A real signal's inverse DFT is even in its cosine part and odd in
    its sine part, so the bases hold samples 0..n_fft/2 only and the rest is mirrored: half the
    weights in the bundle. The overlap-add sums four shifted quarters of every frame, which is why
    the hop must be a quarter of the window."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        if n_fft != 4 * hop:
            raise ValueError(f"inverse STFT overlap-adds quarters: n_fft {n_fft} must be 4 x hop {hop}")
        self.n_fft, self.hop = n_fft, hop
        bins = n_fft // 2 + 1  # also the samples 0..n_fft/2 that the bases produce
        n = torch.arange(bins, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        # DC and Nyquist appear once in a real spectrum, every other bin twice (with its mirror)
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = weight[-1] = 1.0
        angle = 2 * math.pi * k * n / n_fft
        # rounded to float16 as the ONNX bundle stores them (narvox.export.onnx_utils), so PyTorch
        # and ONNX Runtime compute the same; the reconstruction error this adds is about 1e-3
        bases = {"cosine": weight * torch.cos(angle) / n_fft, "sine": -weight * torch.sin(angle) / n_fft}
        for name, basis in bases.items():
            self.register_buffer(name, basis.half().float(), persistent=False)  # [K, n_fft/2 + 1]
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("mirror", torch.arange(n_fft // 2 - 1, 0, -1), persistent=False)

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, N, n_fft] frames hop samples apart -> [B, (N + 3) * hop] samples."""
        b, n, _ = frames.shape
        quarters = frames.reshape(b, n, 4, self.hop)
        # quarter j of frame i lands on output chunk i + j
        total = sum(F.pad(quarters[:, :, j], (0, 0, j, 3 - j)) for j in range(4))
        return total.reshape(b, (n + 3) * self.hop)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        real, imag = spectrum.transpose(1, 2).chunk(2, dim=-1)  # [B, N, K] each
        even, odd = real @ self.cosine, imag @ self.sine  # samples 0..n_fft/2 of each part
        frames = torch.cat([even + odd, (even - odd).index_select(-1, self.mirror)], dim=-1) * self.window
        audio = self._overlap_add(frames)
        overlap = self._overlap_add(self.window.pow(2).expand(1, spectrum.size(-1), self.n_fft))
        start = self.n_fft // 2  # frame i is centred on sample i * hop
        end = start + spectrum.size(-1) * self.hop
        return audio[:, start:end] / overlap[:, start:end].clamp(min=1e-4)


class VocosDecoder(nn.Module):
    """Latent [B, D, F] -> waveform [B, 1, F * hop_length]. The head predicts `upsample` STFT frames
    per codec frame (hop_length / upsample samples apart, windows four hops long), which keeps
    the window short (40 ms at 16 kHz, 50 frames/s, upsample 2) and the ISTFT kernel small."""

    def __init__(self, dimension: int, hop_length: int, dim: int = 192, hidden: int = 576, layers: int = 6,
                 kernel: int = 7, upsample: int = 2):
        super().__init__()
        if hop_length % upsample:
            raise ValueError(f"hop length {hop_length} is not a multiple of upsample {upsample}")
        self.upsample = upsample
        self.n_fft = 4 * hop_length // upsample
        self.bins = self.n_fft // 2 + 1
        self.embed = nn.Conv1d(dimension, dim, kernel, padding=kernel // 2)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden, kernel, 1 / layers) for _ in range(layers))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, upsample * 2 * self.bins)
        self.istft = InverseSTFT(self.n_fft, hop_length // upsample)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.norm_in(self.embed(latent).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        b, _, f = x.shape
        out = self.head(self.norm_out(x.transpose(1, 2)))  # [B, F, upsample * 2K]
        out = out.reshape(b, f * self.upsample, 2 * self.bins).transpose(1, 2)  # [B, 2K, F * upsample]
        log_magnitude, phase = out.split(self.bins, dim=1)
        # Vocos caps the magnitude so an early, wild prediction cannot overflow
        magnitude = torch.exp(log_magnitude).clamp(max=100.0)
        spectrum = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)
        return self.istft(spectrum)[:, None]
