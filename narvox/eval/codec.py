"""Codec quality: how close decoded audio is to the original.

mel distance (mean |log mel difference|, 80 bands), SI-SDR (dB), STOI (pystoi) and wide-band
PESQ (the `pesq` package, 16 kHz; None where it cannot score). Intelligibility retention is
ASR-based and lives in bench/codec.py, which holds the recognizer.
"""
from __future__ import annotations

import logging

import librosa
import numpy as np

from narvox.audio import resample

log = logging.getLogger(__name__)


def _align(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decoded audio is padded to whole frames: compare the original's span only."""
    n = min(len(ref), len(est))
    return np.asarray(ref[:n], dtype=np.float64), np.asarray(est[:n], dtype=np.float64)


def mel_distance(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    ref, est = _align(ref, est)
    mel = dict(sr=sample_rate, n_fft=1024, hop_length=256, n_mels=80, power=1.0)
    m_ref = librosa.feature.melspectrogram(y=ref, **mel)
    m_est = librosa.feature.melspectrogram(y=est, **mel)
    return float(np.mean(np.abs(np.log(np.maximum(m_ref, 1e-5)) - np.log(np.maximum(m_est, 1e-5)))))


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019)."""
    ref, est = _align(ref, est)
    ref, est = ref - ref.mean(), est - est.mean()
    target = (est @ ref) / max(ref @ ref, 1e-12) * ref
    noise = est - target
    return float(10 * np.log10(max(target @ target, 1e-12) / max(noise @ noise, 1e-12)))


def stoi(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    from pystoi import stoi as _stoi
    ref, est = _align(ref, est)
    return float(_stoi(ref, est, sample_rate, extended=False))


def pesq_wb(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float | None:
    """Wide-band PESQ (MOS-LQO, 1.0-4.6), or None when the package is missing or finds no speech."""
    try:
        from pesq import PesqError, pesq
    except ImportError:
        return None
    ref, est = _align(ref, est)
    if sample_rate != 16000:
        ref, est = resample(ref, sample_rate, 16000), resample(est, sample_rate, 16000)
    try:
        return float(pesq(16000, ref, est, "wb"))
    except PesqError as e:
        log.warning("PESQ cannot score this pair: %s", e)
        return None


def codec_metrics(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> dict:
    return {"mel_distance": mel_distance(ref, est, sample_rate), "si_sdr": si_sdr(ref, est),
            "stoi": stoi(ref, est, sample_rate), "pesq": pesq_wb(ref, est, sample_rate)}
