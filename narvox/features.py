"""Acoustic features shared by training and deployment.

- `fbank`: 80-dim Kaldi log-mel filterbank through kaldi-native-fbank (the same code sherpa-onnx
  and funasr-onnx run), with samples scaled to the int16 range as those runtimes do. Two presets
  match the two deployment conventions: `funasr` (hamming window, snip_edges; FunASR and
  sherpa-onnx Paraformer) and `kaldi` (povey window, no snip_edges, high_freq -400; WeNet and
  sherpa-onnx's WeNet CTC).
- `apply_lfr`: Paraformer's low frame rate stacking (m frames every n).
- CMVN: global statistics over a data directory, stored as a Kaldi nnet1 `am.mvn`.
- `log_mel`: torch log-mel spectrogram for codec reconstruction losses.

Everything but `log_mel` is torch-free so narvox.runtime can import it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from narvox.errors import AudioError


@dataclass(frozen=True)
class FbankConfig:
    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    window_type: str = "hamming"
    dither: float = 0.0
    snip_edges: bool = True
    high_freq: float = 0.0  # <= 0: offset from Nyquist

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def preset(cls, name: str) -> "FbankConfig":
        if name not in FBANK_PRESETS:
            raise ValueError(f"unknown fbank preset '{name}' (one of {sorted(FBANK_PRESETS)})")
        return FBANK_PRESETS[name]


FBANK_PRESETS = {
    "funasr": FbankConfig(),
    "kaldi": FbankConfig(window_type="povey", snip_edges=False, high_freq=-400.0),
}


def _fbank_computer(config: FbankConfig):
    import kaldi_native_fbank as knf
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = config.sample_rate
    opts.frame_opts.frame_length_ms = config.frame_length_ms
    opts.frame_opts.frame_shift_ms = config.frame_shift_ms
    opts.frame_opts.window_type = config.window_type
    opts.frame_opts.dither = config.dither
    opts.frame_opts.snip_edges = config.snip_edges
    opts.mel_opts.num_bins = config.num_mel_bins
    opts.mel_opts.high_freq = config.high_freq
    return knf.OnlineFbank(opts)


def fbank(samples: np.ndarray, config: FbankConfig = FbankConfig()) -> np.ndarray:
    """[T] float samples in [-1, 1] at config.sample_rate -> [frames, num_mel_bins] float32."""
    window = int(config.sample_rate * config.frame_length_ms / 1000)
    if samples.ndim != 1:
        raise AudioError(f"fbank expects mono [T] samples, got shape {samples.shape}")
    if len(samples) < (window if config.snip_edges else window // 2 + 1):
        raise AudioError(f"audio of {len(samples)} samples is shorter than one "
                         f"{config.frame_length_ms:g} ms frame")
    computer = _fbank_computer(config)
    computer.accept_waveform(config.sample_rate, (samples * 32768.0).astype(np.float32).tolist())
    computer.input_finished()
    return np.array([computer.get_frame(i) for i in range(computer.num_frames_ready)],
                    dtype=np.float32)


def lfr_length(num_frames: int | np.ndarray, n: int = 6):
    """Frames after LFR: ceil(T / n)."""
    return -(-num_frames // n)


def apply_lfr(feats: np.ndarray, m: int = 7, n: int = 6) -> np.ndarray:
    """Stack m frames every n, as FunASR's WavFrontend does.

    The left edge is padded with (m - 1) // 2 copies of frame 0 and the right edge with the last
    frame, so output frame i covers padded rows [i*n, i*n + m). [T, D] -> [ceil(T/n), m*D].
    """
    t, d = feats.shape
    out_frames = lfr_length(t, n)
    left = (m - 1) // 2
    rows = np.arange(out_frames)[:, None] * n + np.arange(m)[None, :] - left
    rows = np.clip(rows, 0, t - 1)
    return feats[rows].reshape(out_frames, m * d)


@dataclass
class Cmvn:
    """Global mean/variance normalisation applied as (x + neg_mean) * inv_stddev."""
    neg_mean: np.ndarray
    inv_stddev: np.ndarray

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return ((feats + self.neg_mean) * self.inv_stddev).astype(np.float32)

    @classmethod
    def from_stats(cls, count: int, total: np.ndarray, total_sq: np.ndarray,
                   floor: float = 1e-20) -> "Cmvn":
        mean = total / count
        var = np.maximum(total_sq / count - mean ** 2, floor)
        return cls((-mean).astype(np.float32), (1.0 / np.sqrt(var)).astype(np.float32))

    def save(self, path: str | Path) -> None:
        """Kaldi nnet1 text: `<AddShift>` holds neg_mean, `<Rescale>` holds inv_stddev (am.mvn)."""
        dim = len(self.neg_mean)
        fmt = lambda v: " ".join(f"{x:.8g}" for x in v)
        Path(path).write_text(
            f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n"
            f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {fmt(self.neg_mean)} ]\n"
            f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {fmt(self.inv_stddev)} ]\n</Nnet>\n")

    @classmethod
    def load(cls, path: str | Path) -> "Cmvn":
        lines = Path(path).read_text().splitlines()
        values = {}
        for i, line in enumerate(lines):
            tag = line.split()[0] if line.split() else ""
            if tag in ("<AddShift>", "<Rescale>") and i + 1 < len(lines):
                fields = lines[i + 1].split()
                values[tag] = np.array(fields[3:-1], dtype=np.float32)
        if set(values) != {"<AddShift>", "<Rescale>"}:
            raise ValueError(f"{path}: not an am.mvn file (needs <AddShift> and <Rescale>)")
        return cls(values["<AddShift>"], values["<Rescale>"])


class CmvnAccumulator:
    """Running sums for global CMVN; feed feature matrices, then `.result()`."""

    def __init__(self):
        self.count, self.total, self.total_sq = 0, None, None

    def add(self, feats: np.ndarray) -> None:
        f = feats.astype(np.float64)
        if self.total is None:
            self.total, self.total_sq = np.zeros(f.shape[1]), np.zeros(f.shape[1])
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.total_sq += (f ** 2).sum(0)

    def result(self) -> Cmvn:
        if not self.count:
            raise ValueError("no frames were accumulated for CMVN")
        return Cmvn.from_stats(self.count, self.total, self.total_sq)


def log_mel(wav, sample_rate: int, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 80,
            eps: float = 1e-5):
    """torch [B, T] -> [B, n_mels, frames] natural-log mel spectrogram (differentiable)."""
    import torch
    import torchaudio
    key = (sample_rate, n_fft, hop_length, n_mels, wav.device)
    transform = _MEL_CACHE.get(key)
    if transform is None:
        transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
            power=1.0, center=True).to(wav.device)
        _MEL_CACHE[key] = transform
    return torch.log(transform(wav).clamp_min(eps))


_MEL_CACHE: dict = {}
