"""Codec training losses: multi-scale mel reconstruction and the MS-STFT GAN's hinge and
feature-matching terms (EnCodec's recipe)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


class MultiScaleMelLoss(nn.Module):
    """L1 on log-mel plus L1 on mel magnitude, summed over STFT sizes from 64 to 2048 samples:
    short windows judge timing, long ones pitch and formants."""

    def __init__(self, sample_rate: int, n_ffts: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)):
        super().__init__()
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n, win_length=n, hop_length=n // 4,
                n_mels=min(80, n // 8), power=1.0, center=True, normalized=False)
            for n in n_ffts)

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = 0.0
        for mel in self.mels:
            m_est, m_ref = mel(estimate), mel(target)
            loss = loss + F.l1_loss(m_est, m_ref) + F.l1_loss(torch.log(m_est.clamp(min=1e-5)),
                                                              torch.log(m_ref.clamp(min=1e-5)))
        return loss / len(self.mels)


def discriminator_hinge(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean()
               for r, f in zip(real_logits, fake_logits)) / len(real_logits)


def generator_hinge(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.relu(1 - f).mean() for f in fake_logits) / len(fake_logits)


def feature_matching(real_maps: list[list[torch.Tensor]], fake_maps: list[list[torch.Tensor]]) -> torch.Tensor:
    """Relative L1 between the discriminators' inner activations on real and decoded audio."""
    terms = [F.l1_loss(f, r.detach()) / (r.detach().abs().mean() + 1e-8)
             for real, fake in zip(real_maps, fake_maps) for r, f in zip(real, fake)]
    return sum(terms) / len(terms)
