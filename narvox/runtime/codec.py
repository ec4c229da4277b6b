"""Codec bundles (encoder.onnx + decoder.onnx + narvox.json) on ONNX Runtime, without torch."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from narvox.bundle import Bundle, read_bundle
from narvox.errors import NarvoxError
from narvox.runtime.codec_inputs import CONTEXT_FRAMES, audio_batch, codes_batch, num_frames, pad_audio, pad_codes
from narvox.runtime.session import GraphSession


def codebooks_for_bitrate(kbps: float, frame_rate: float, codebook_size: int, max_codebooks: int,
                          name: str = "this") -> int:
    """The number of codebooks that gives at most `kbps` (at least one)."""
    per_codebook = frame_rate * math.log2(codebook_size) / 1000
    n = int(math.floor(kbps / per_codebook + 1e-6))
    if not 1 <= n <= max_codebooks:
        raise NarvoxError(f"{name} codec serves {per_codebook:g} to {per_codebook * max_codebooks:g} kbps, "
                          f"not {kbps:g}")
    return n


class OnnxCodec:
    """The `Codec` calls on numpy arrays: encode(wav [B, T]) -> codes [B, Q, F]; decode(codes) -> wav.
    Inputs are checked and padded by narvox.runtime.codec_inputs, as in PyTorch."""

    def __init__(self, bundle: str | Path | Bundle = "narvox", n_codebooks: int | None = None,
                 bandwidth: float | None = None, providers: list[str] | None = None, num_threads: int = 2):
        self.bundle = read_bundle(bundle, family="codec")  # a directory or a shipped codec's name
        self.meta = m = self.bundle.settings
        self.name, self.sample_rate, self.frame_rate = m["codec"], m["sample_rate"], m["frame_rate"]
        self.codebook_size, self.max_codebooks, self.hop_length = m["codebook_size"], m["max_codebooks"], m["hop_length"]
        if bandwidth is not None:
            n_codebooks = codebooks_for_bitrate(bandwidth, self.frame_rate, self.codebook_size,
                                                self.max_codebooks, self.name)
        self.n_codebooks = n_codebooks or m["n_codebooks"]
        self.min_frames = m["min_frames"]
        self.context_frames = m.get("context_frames", CONTEXT_FRAMES)  # bundles before it was recorded
        if not 1 <= self.n_codebooks <= self.max_codebooks:
            raise NarvoxError(f"{self.bundle.path}: the codec has {self.max_codebooks} codebooks, "
                              f"asked for {self.n_codebooks}")
        self.encoder = GraphSession(self.bundle, "encoder", providers, num_threads)
        self.decoder = GraphSession(self.bundle, "decoder", providers, num_threads)

    def identity(self) -> dict:
        return {k: self.meta[k] for k in ("codec", "weights", "sample_rate", "frame_rate", "codebook_size")}

    def num_frames(self, num_samples: int) -> int:
        return num_frames(num_samples, self.hop_length)

    def encode(self, wav, sample_rate: int | None = None) -> np.ndarray:
        """Audio [T] or [B, T] (rows zero-padded) -> int64 codes [B, Q, F]; the rules are
        narvox.runtime.codec_inputs's, the same as the PyTorch `Codec`'s."""
        wav = audio_batch(wav, self.name, self.sample_rate, sample_rate)
        # the graph takes whole frames (its padding arithmetic was traced for them)
        padded, frames = pad_audio(wav, self.hop_length, self.min_frames, self.context_frames)
        (codes,) = self.encoder(padded)
        return codes[:, : self.n_codebooks, :frames]

    def decode(self, codes, lengths=None) -> np.ndarray:
        """codes [B, Q, F] -> float32 audio [B, F * hop_length]. `lengths` (frames of each row) makes
        a padded batch decode each row as alone; cut row b at lengths[b] * hop_length."""
        codes = codes_batch(codes, self.name, self.codebook_size, self.max_codebooks)
        frames = codes.shape[2]
        (audio,) = self.decoder(pad_codes(codes, self.name, lengths, self.min_frames, self.context_frames))
        return audio[:, : frames * self.hop_length]


class StreamingDecoder:
    """The audio of one code sequence that grows at its end, chunk by chunk, equal to decoding
    the whole sequence at once: a frame's audio depends on `context_frames` of codes either side,
    so each chunk is decoded with that much context, and a frame is emitted only once the codes
    that far past it are final (all of them at the end)."""

    def __init__(self, codec: OnnxCodec):
        self.codec, self.emitted = codec, 0

    def push(self, codes: np.ndarray, final: bool = False) -> np.ndarray:
        """codes [Q, n]: every final frame so far. Returns the audio not yet emitted that they
        settle (possibly none)."""
        context, n = self.codec.context_frames, codes.shape[1]
        end = n if final else n - context
        if end <= self.emitted:
            return np.zeros(0, dtype=np.float32)
        start = max(0, self.emitted - context)
        audio = self.codec.decode(codes[None, :, start:min(n, end + context)])[0]
        hop = self.codec.hop_length
        chunk = audio[(self.emitted - start) * hop:(end - start) * hop]
        self.emitted = end
        return chunk
