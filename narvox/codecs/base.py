"""The one interface every TTS backend uses to turn audio into discrete tokens and back."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from narvox.errors import NarvoxError
from narvox.runtime.codec import codebooks_for_bitrate
from narvox.runtime.codec_inputs import CONTEXT_FRAMES, audio_batch, codes_batch, num_frames, pad_audio, pad_codes


class Codec(ABC):
    """A neural audio codec: waveform <-> codes [B, Q, F] (Q codebooks, F frames).

    Subclasses set `name`, `sample_rate`, `frame_rate`, `codebook_size`, `max_codebooks` and
    `n_codebooks` (how many codebooks `encode` returns: the bitrate in use), `context_frames` where
    the networks look further past an item's end than CONTEXT_FRAMES, and implement
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
    context_frames: int = CONTEXT_FRAMES

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
        return num_frames(num_samples, self.hop_length)

    @torch.inference_mode()
    def encode(self, wav, sample_rate: int | None = None) -> torch.Tensor:
        """wav [T] or [B, T] (tensor or numpy; float in [-1, 1] or int16) -> LongTensor [B, Q, F].

        Audio at another `sample_rate` is resampled first. Rows of a batch are zero-padded at the
        end; each gives the codes it gives alone on its own `num_frames(length)` frames. The
        checks, padding and resampling are narvox.runtime.codec_inputs's, shared with OnnxCodec.
        """
        device = wav.device if torch.is_tensor(wav) else None
        wav = audio_batch(_numpy(wav), self.name, self.sample_rate, sample_rate)
        padded, frames = pad_audio(wav, self.hop_length, context_frames=self.context_frames)
        return self._encode(torch.as_tensor(padded, device=device))[:, : self.n_codebooks, :frames]

    @torch.inference_mode()
    def decode(self, codes, lengths=None) -> torch.Tensor:
        """codes [B, Q, F] (any Q up to `max_codebooks`) -> waveform [B, F * hop_length].

        `lengths` (frames of each row) makes a padded batch decode each row as it decodes alone,
        whatever the padding holds; cut row b at lengths[b] * hop_length.
        """
        device = codes.device if torch.is_tensor(codes) else None
        codes = codes_batch(_numpy(codes), self.name, self.codebook_size, self.max_codebooks)
        padded = pad_codes(codes, self.name, _numpy(lengths), context_frames=self.context_frames)
        return self._decode(torch.as_tensor(padded, device=device))[:, : codes.shape[2] * self.hop_length]

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
        """[B, T] at `sample_rate`, whole frames, at least MIN_FRAMES -> [B, n_codebooks or more, F]."""

    @abstractmethod
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, Q, F], at least MIN_FRAMES frames -> [B, F * hop_length]."""


def _numpy(x):
    """Tensors (on any device) as numpy arrays, for the torch-free checks; anything else as it is."""
    if not torch.is_tensor(x):
        return x
    x = x.detach().cpu()
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
