"""The one interface every TTS backend uses to turn audio into discrete tokens and back."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
import torchaudio

from narvox.errors import AudioError, NarvoxError
from narvox.runtime.codec import codebooks_for_bitrate


class Codec(ABC):
    """A neural audio codec: waveform <-> codes [B, Q, F] (Q codebooks, F frames).

    Subclasses set `name`, `sample_rate`, `frame_rate`, `codebook_size`, `max_codebooks` and
    `n_codebooks` (how many codebooks `encode` returns: the bitrate in use), and implement
    `_encode`/`_decode` at their own sample rate. Residual quantisation makes the first q
    codebooks of a deeper encoding the encoding at q codebooks, so one model serves every
    bitrate it was trained for.
    """

    name: str
    sample_rate: int
    frame_rate: float
    codebook_size: int
    max_codebooks: int
    n_codebooks: int

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate / self.frame_rate))

    @property
    def bitrate_kbps(self) -> float:
        return self.n_codebooks * self.frame_rate * math.log2(self.codebook_size) / 1000

    def codebooks_for(self, kbps: float) -> int:
        """The number of codebooks that gives at most `kbps` (at least one)."""
        return codebooks_for_bitrate(kbps, self.frame_rate, self.codebook_size, self.max_codebooks, self.name)

    def set_codebooks(self, n: int) -> None:
        if not 1 <= n <= self.max_codebooks:
            raise NarvoxError(f"{self.name} codec has {self.max_codebooks} codebooks, asked for {n}")
        self.n_codebooks = n

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    @torch.inference_mode()
    def encode(self, wav, sample_rate: int | None = None) -> torch.Tensor:
        """wav [B, T] or [T] (tensor or numpy, float in [-1, 1]) -> LongTensor [B, Q, F].

        Audio at another `sample_rate` is resampled first. Rows of a padded batch give
        `num_frames(length)` meaningful frames each.
        """
        wav = torch.as_tensor(np.asarray(wav) if not torch.is_tensor(wav) else wav, dtype=torch.float32)
        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2:
            raise AudioError(f"{self.name} codec encodes [B, T] mono audio, got shape {tuple(wav.shape)}")
        if wav.size(-1) == 0:
            raise AudioError(f"{self.name} codec: audio is empty (0 samples)")
        if not torch.isfinite(wav).all():
            raise AudioError(f"{self.name} codec: audio holds NaN or infinite samples")
        if sample_rate is not None and sample_rate != self.sample_rate:
            wav = torchaudio.functional.resample(wav, sample_rate, self.sample_rate)
        return self._encode(wav)[:, : self.n_codebooks]

    @torch.inference_mode()
    def decode(self, codes) -> torch.Tensor:
        """codes [B, Q, F] (any Q up to `max_codebooks`) -> waveform [B, F * hop_length]."""
        codes = torch.as_tensor(np.asarray(codes) if not torch.is_tensor(codes) else codes).long()
        if codes.dim() != 3:
            raise NarvoxError(f"{self.name} codec decodes codes [B, Q, F], got shape {tuple(codes.shape)}")
        if not 1 <= codes.size(1) <= self.max_codebooks:
            raise NarvoxError(f"{self.name} codec has {self.max_codebooks} codebooks, codes have {codes.size(1)}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise NarvoxError(f"{self.name} codec: codes must lie in [0, {self.codebook_size}), "
                              f"got [{int(codes.min())}, {int(codes.max())}]")
        return self._decode(codes)

    def identity(self) -> dict:
        """What makes two codecs' codes interchangeable: stored beside dumped codes."""
        return {"codec": self.name, "weights": self.weights_id, "sample_rate": self.sample_rate,
                "frame_rate": self.frame_rate, "codebook_size": self.codebook_size}

    @property
    @abstractmethod
    def weights_id(self) -> str:
        """A digest of the weights, so codes of two trainings of one architecture never mix."""

    @abstractmethod
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, T] at `sample_rate` -> [B, max_codebooks or more, F]."""

    @abstractmethod
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, Q, F] -> [B, T]."""
