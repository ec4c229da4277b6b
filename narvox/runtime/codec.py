"""Codec bundles (encoder.onnx + decoder.onnx + narvox.json) on ONNX Runtime, without torch."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from narvox.audio import resample
from narvox.errors import AudioError, NarvoxError
from narvox.runtime.session import create_session


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
    """The `Codec` calls on numpy arrays: encode(wav [B, T]) -> codes [B, Q, F]; decode(codes) -> wav."""

    def __init__(self, bundle_dir: str | Path, n_codebooks: int | None = None, bandwidth: float | None = None,
                 providers: list[str] | None = None, num_threads: int = 2):
        bundle_dir = Path(bundle_dir)
        meta_path = bundle_dir / "narvox.json"
        if not meta_path.is_file():
            raise NarvoxError(f"{bundle_dir} is not a codec bundle: narvox.json is missing")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("kind") != "codec":
            raise NarvoxError(f"{meta_path} describes a {self.meta.get('kind')!r} bundle, not a codec")
        m = self.meta
        self.name, self.sample_rate, self.frame_rate = m["codec"], m["sample_rate"], m["frame_rate"]
        self.codebook_size, self.max_codebooks, self.hop_length = m["codebook_size"], m["max_codebooks"], m["hop_length"]
        if bandwidth is not None:
            n_codebooks = codebooks_for_bitrate(bandwidth, self.frame_rate, self.codebook_size,
                                                self.max_codebooks, self.name)
        self.n_codebooks = n_codebooks or m["n_codebooks"]
        self.min_frames = m["min_frames"]
        if not 1 <= self.n_codebooks <= self.max_codebooks:
            raise NarvoxError(f"{bundle_dir}: the codec has {self.max_codebooks} codebooks, asked for {self.n_codebooks}")
        self.encoder = create_session(bundle_dir / "encoder.onnx", providers, num_threads)
        self.decoder = create_session(bundle_dir / "decoder.onnx", providers, num_threads)

    def identity(self) -> dict:
        return {k: self.meta[k] for k in ("codec", "weights", "sample_rate", "frame_rate", "codebook_size")}

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    def encode(self, wav: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim == 1:
            wav = wav[None]
        if wav.ndim != 2 or wav.shape[1] == 0:
            raise AudioError(f"{self.name} codec encodes [B, T] mono audio, got shape {wav.shape}")
        if not np.isfinite(wav).all():
            raise AudioError(f"{self.name} codec: audio holds NaN or infinite samples")
        if sample_rate is not None and sample_rate != self.sample_rate:
            wav = np.stack([resample(row, sample_rate, self.sample_rate) for row in wav])
        frames = self.num_frames(wav.shape[1])
        # whole frames, and at least `min_frames`: the graph's reflect padding needs that much
        wav = np.pad(wav, ((0, 0), (0, max(frames, self.min_frames) * self.hop_length - wav.shape[1])))
        codes = self.encoder.run(None, {"wav": wav})[0]
        return codes[:, : self.n_codebooks, :frames]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 3 or not 1 <= codes.shape[1] <= self.max_codebooks:
            raise NarvoxError(f"{self.name} codec decodes codes [B, Q<={self.max_codebooks}, F], got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise NarvoxError(f"{self.name} codec: codes must lie in [0, {self.codebook_size})")
        frames = codes.shape[2]
        if frames < self.min_frames:  # repeat the last frame, then cut its audio off again
            codes = np.pad(codes, ((0, 0), (0, 0), (0, self.min_frames - frames)), mode="edge")
        return self.decoder.run(None, {"codes": codes})[0][:, : frames * self.hop_length]
