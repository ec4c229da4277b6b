"""Audio I/O: read anything soundfile reads and Kaldi wav.scp entries, mix to mono, resample, write.

Torch-free on purpose: narvox.runtime uses this module too.
"""
from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import soxr

from narvox.errors import AudioError

PathLike = Union[str, Path]


def _check_samples(samples: np.ndarray, source: str) -> np.ndarray:
    if samples.size == 0:
        raise AudioError(f"{source}: audio is empty (0 samples)")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{source}: audio holds NaN or infinite samples")
    return samples


def _decode(data: Union[PathLike, io.BytesIO], source: str) -> tuple[np.ndarray, int]:
    try:
        samples, sample_rate = sf.read(data, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(f"{source}: cannot decode audio ({e})") from None
    return samples, sample_rate


def _run_pipe(command: str) -> bytes:
    proc = subprocess.run(command, shell=True, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"pipe '{command}' failed with exit code {proc.returncode}"
                         + (f": {err[-1]}" if err else ""))
    if not proc.stdout:
        raise AudioError(f"pipe '{command}' produced no audio")
    return proc.stdout


def read_audio(source: PathLike, sample_rate: int | None = None, mono: bool = True,
               start: float = 0.0, end: float | None = None,
               allow_pipe: bool = False) -> tuple[np.ndarray, int]:
    """Read audio as float32 in [-1, 1].

    `source` is a file path. Only with `allow_pipe` (recipe code reading a Kaldi wav.scp) may it
    be a shell command ending in '|': a name a user typed is a path, never a command.
    `start`/`end` (seconds) cut a segment, as Kaldi's `segments` file asks.
    Returns (samples, sample_rate): samples are [T] when mono, else [T, C].
    """
    samples, sr, spec = _read_native(source, allow_pipe)
    if start or end is not None:
        first = int(round(start * sr))
        last = samples.shape[0] if end is None else int(round(end * sr))
        if first >= samples.shape[0]:
            raise AudioError(f"{spec}: segment starts at {start:.3f}s, after the audio's end "
                             f"({samples.shape[0] / sr:.3f}s)")
        samples = samples[first:last]
    _check_samples(samples, spec)
    if mono:
        samples = samples.mean(axis=1)
    if sample_rate is not None and sample_rate != sr:
        samples = resample(samples, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(samples, dtype=np.float32), sr


def _read_native(source: PathLike, allow_pipe: bool) -> tuple[np.ndarray, int, str]:
    """[T, C] float32 at the file's own rate, and the name to report it by."""
    if allow_pipe and str(source).strip().endswith("|"):
        spec = str(source).strip()
        return (*_decode(io.BytesIO(_run_pipe(spec[:-1])), spec), spec)
    spec = str(source)  # exactly the user's name: no stripping, no shell
    if not Path(spec).is_file():
        raise AudioError(f"{spec}: no such file")
    return (*_decode(Path(spec), spec), spec)


def native_rate(source: PathLike) -> int:
    """The sample rate a file was recorded at (header only)."""
    try:
        return sf.info(str(source)).samplerate
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{source}: cannot read audio header ({e})") from None


def as_float_audio(samples, source: str = "<array>") -> np.ndarray:
    """An array from a user as float32 in [-1, 1], checked: int16 PCM (what many recorders and
    `soundfile.read(dtype='int16')` give) is scaled by 1/32768; other integer types are refused,
    since their full scale is ambiguous; empty, NaN and infinite audio is refused."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    elif not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"{source}: audio of dtype {samples.dtype} is not supported; pass float "
                         "samples in [-1, 1] or int16 PCM")
    return _check_samples(samples.astype(np.float32, copy=False), source)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[T] stays; [T, C] is averaged over channels."""
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """High-quality resampling (soxr) of [T] or [T, C] float audio."""
    if orig_sr <= 0 or target_sr <= 0:
        raise AudioError(f"cannot resample from {orig_sr} Hz to {target_sr} Hz")
    if orig_sr == target_sr:
        return samples
    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32)


def write_audio(path: PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM in the format the file name asks for (.wav, .flac, ...)."""
    samples = np.asarray(samples, dtype=np.float32)
    _check_samples(samples, str(path))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16")


def duration(source: PathLike, allow_pipe: bool = False) -> float:
    """Length in seconds; reads headers only for files, decodes pipes (when allowed)."""
    spec = str(source).strip() if allow_pipe else str(source)
    if allow_pipe and spec.endswith("|"):
        samples, sr = read_audio(spec, mono=False, allow_pipe=True)
        return samples.shape[0] / sr
    if not Path(spec).is_file():
        raise AudioError(f"{spec}: no such file")
    try:
        info = sf.info(spec)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{spec}: cannot read audio header ({e})") from None
    if info.frames == 0:
        raise AudioError(f"{spec}: audio is empty (0 samples)")
    return info.frames / info.samplerate


def audio_input(item, sample_rate: int, source: str) -> tuple[np.ndarray, int]:
    """What the APIs take as audio: a path, a mono array at `sample_rate`, or (array, rate) with
    the array [T] or [T, channels]. Returns mono float32 samples and their rate; AudioError
    naming `source` for anything else."""
    if isinstance(item, (str, Path)):
        samples, rate = read_audio(item)
    elif isinstance(item, tuple):  # (array, sample_rate)
        samples, rate = item
        samples = as_float_audio(samples, source)
        if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
            raise AudioError(f"{source}: shape {samples.shape} looks like [channels, T]; "
                             "pass [T] or [T, channels] (what soundfile.read gives)")
        if samples.ndim > 2:
            raise AudioError(f"{source}: audio must be [T] or [T, channels], got {samples.shape}")
        samples = to_mono(samples)
    else:
        samples, rate = as_float_audio(item, source), sample_rate
        if samples.ndim != 1:
            raise AudioError(f"{source}: an array input must be mono [T] at {sample_rate} Hz "
                             f"(or pass (array, sample_rate)); got shape {samples.shape}")
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"{source}: sample rate must be a positive integer, got {rate!r}")
    return samples, int(rate)
