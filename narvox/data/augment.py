"""Waveform augmentation for ASR training and the robustness test sets: what separates synthetic
training voices from speech people record (other speakers' pitch and vocal tracts, noise, rooms,
telephones, lossy files, bad levels).

Every transform is `transform(samples, sample_rate, rng) -> samples` on float32 mono and draws
its settings from the numpy Generator it is given, so a seed fixes the result. `WaveAugment`
chains them, each applied with its own probability `p`, from a config such as

    augment: {speed: {p: 0.5}, noise: {p: 0.5, snr_db: [0, 20]}, reverb: {p: 0.3},
              telephone: {p: 0.1}, compression: {p: 0.1}, gain: {p: 0.5}}

`VocalTract` works on fbank instead (a warp of the mel axis, VTLP), after feature extraction.
The libraries do the acoustics: soxr resampling, librosa's phase-vocoder pitch shift,
pyroomacoustics' image-source room impulse responses, libsndfile's mu-law, GSM, MP3 and Opus.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

Wave = np.ndarray


def _uniform(rng: np.random.Generator, bounds) -> float:
    low, high = bounds
    return float(rng.uniform(low, high))


def rms(x: Wave) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


@dataclass
class Speed:
    """Kaldi's speed perturbation: tempo and pitch together, length divided by the factor."""
    factors: tuple[float, ...] = (0.9, 1.1)
    p: float = 0.5

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        factor = float(rng.choice(self.factors))
        # played at factor x the rate: resample from sr * factor to sr
        return soxr.resample(x, sr * factor, sr).astype(np.float32)


@dataclass
class Pitch:
    """Pitch shift by a whole number of semitones, length kept (librosa's phase vocoder and soxr;
    torchaudio's pitch_shift takes seconds per utterance on CPU, a resampling kernel of the
    ratio's full fraction)."""
    semitones: tuple[int, int] = (-3, 3)
    p: float = 0.3

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        import librosa
        steps = int(rng.integers(self.semitones[0], self.semitones[1] + 1))
        if steps == 0:
            return x
        return librosa.effects.pitch_shift(x, sr=sr, n_steps=steps).astype(np.float32)


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> Wave:
    """Gaussian noise with power falling as 1 / f**exponent (0 white, 1 pink, 2 brown, -1 blue)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return (noise / rms(noise)).astype(np.float32)


def mix_at_snr(x: Wave, noise: Wave, snr_db: float) -> Wave:
    """x plus noise (tiled or cut to x's length) scaled to `snr_db` below x's power."""
    noise = np.resize(noise, len(x)).astype(np.float32)
    scale = rms(x) / (rms(noise) * 10 ** (snr_db / 20))
    return (x + scale * noise).astype(np.float32)


@dataclass
class Noise:
    """Additive noise at a random SNR: colored noise of the `colors` exponents or babble, the sum
    of 3-6 other utterances (`babble_source(k, rng)` gives k waveforms at the same rate; none: no
    babble)."""
    snr_db: tuple[float, float] = (0.0, 20.0)
    colors: tuple[float, ...] = (0.0, 1.0, 2.0)
    babble: float = 0.5  # share of babble among the noises, when a source is given
    p: float = 0.5
    babble_source: Callable[[int, np.random.Generator], list[Wave]] | None = None

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        snr = _uniform(rng, self.snr_db)
        if self.babble_source is not None and rng.random() < self.babble:
            talkers = self.babble_source(int(rng.integers(3, 7)), rng)
            noise = np.zeros(len(x), dtype=np.float32)
            for t in talkers:
                start = int(rng.integers(0, max(1, len(t) - len(x))))
                noise += np.resize(t[start:start + len(x)], len(x)) / max(rms(t), 1e-4)
        else:
            noise = colored_noise(len(x), float(rng.choice(self.colors)), rng)
        return mix_at_snr(x, noise, snr)


def room_impulse_response(sr: int, rt60: float, rng: np.random.Generator, max_order: int = 60) -> Wave:
    """The impulse response of a random shoebox room (pyroomacoustics' image sources), source and
    microphone at least 0.5 m from the walls. The walls absorb what gives `rt60` by Sabine's
    formula, whose rooms decay slower than it says; the response is then shaped to decay at
    `rt60` as measured (an exponential envelope: the amplitude falls 60 dB per RT60). The image
    order is capped for speed."""
    import pyroomacoustics as pra
    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4)])
    absorption, order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(order, max_order))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    measured = pra.experimental.measure_rt60(h, fs=sr)
    if measured > rt60:
        t = np.arange(len(h)) / sr
        h *= np.exp(-np.log(1000) * t * (1 / rt60 - 1 / measured))
    return h.astype(np.float32)


@dataclass
class Reverb:
    """Convolution with a simulated room impulse response of RT60 in `rt60` seconds. Responses
    are drawn into a bank of `bank_size` per process (about 0.3 s each) and reused after that.
    The output keeps the input's length and level."""
    rt60: tuple[float, float] = (0.3, 0.8)
    bank_size: int = 32
    p: float = 0.3

    def __post_init__(self):
        self._bank: dict[int, list[Wave]] = {}

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        from scipy.signal import fftconvolve
        bank = self._bank.setdefault(sr, [])
        if len(bank) < self.bank_size:
            rir = room_impulse_response(sr, _uniform(rng, self.rt60), rng)
            # banked from the direct path on, so the speech is not delayed against its transcript
            bank.append(rir[int(np.argmax(np.abs(rir))):])
            rir = bank[-1]
        else:
            rir = bank[int(rng.integers(len(bank)))]
        y = fftconvolve(x, rir)[:len(x)]
        return (y * rms(x) / rms(y)).astype(np.float32)


def _through_codec(x: Wave, sr: int, format: str, subtype: str, **options) -> Wave:
    """Encode with libsndfile into memory and decode again."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), sr, format=format, subtype=subtype, **options)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    return y


def _fit(y: Wave, n: int) -> Wave:
    return np.pad(y[:n], (0, max(0, n - len(y)))).astype(np.float32)


def telephone_channel(x: Wave, sr: int, codec: str) -> Wave:
    """x as a telephone line carries it, at 8 kHz: 300-3400 Hz, then coded by `codec`, a
    libsndfile WAV subtype (ULAW: G.711 mu-law, GSM610: GSM 06.10)."""
    from scipy.signal import butter, sosfilt
    narrow = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos"), soxr.resample(x, sr, 8000))
    return _fit(_through_codec(narrow, 8000, "WAV", codec), len(narrow))


@dataclass
class Telephone:
    """A telephone channel (mu-law or GSM), back at the input's rate."""
    codecs: tuple[str, ...] = ("ULAW", "GSM610")
    p: float = 0.1

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        narrow = telephone_channel(x, sr, str(rng.choice(self.codecs)))
        return _fit(soxr.resample(narrow, 8000, sr), len(x))


@dataclass
class Compression:
    """A lossy file: MP3 or Opus at a random quality (libsndfile's compression level, 0 best)."""
    formats: tuple[str, ...] = ("mp3", "opus")
    level: tuple[float, float] = (0.5, 1.0)
    p: float = 0.1

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        fmt = str(rng.choice(self.formats))
        format, subtype = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}[fmt]
        if fmt == "opus" and sr not in (8000, 12000, 16000, 24000, 48000):
            raise ValueError(f"Opus cannot code {sr} Hz audio")
        y = _through_codec(x, sr, format, subtype, compression_level=_uniform(rng, self.level))
        return _fit(y, len(x))


@dataclass
class Gain:
    """A random level in dB; with probability `clip`, also driven into clipping by 3-12 dB."""
    db: tuple[float, float] = (-20.0, 6.0)
    clip: float = 0.2
    p: float = 0.5

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        y = x * 10 ** (_uniform(rng, self.db) / 20)
        if rng.random() < self.clip:
            peak = float(np.max(np.abs(y))) + 1e-9
            y = y / peak * 10 ** (rng.uniform(3, 12) / 20)
        return np.clip(y, -1.0, 1.0).astype(np.float32)


WAVE_TRANSFORMS = {"speed": Speed, "pitch": Pitch, "noise": Noise, "reverb": Reverb,
                   "telephone": Telephone, "compression": Compression, "gain": Gain}
ORDER = tuple(WAVE_TRANSFORMS)  # the speaker first, then the room, the channel, the file, the level


class WaveAugment:
    """The configured transforms in ORDER, each applied with its probability."""

    def __init__(self, config: dict, babble_source: Callable | None = None):
        unknown = set(config) - set(WAVE_TRANSFORMS)
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)} (known: {list(WAVE_TRANSFORMS)})")
        self.transforms = []
        for name in ORDER:
            if name in config and config[name] is not None:
                options = {k: tuple(v) if isinstance(v, list) else v for k, v in (config[name] or {}).items()}
                if name == "noise":
                    options.setdefault("babble_source", babble_source)
                self.transforms.append(WAVE_TRANSFORMS[name](**options))

    def __call__(self, x: Wave, sr: int, rng: np.random.Generator) -> Wave:
        for t in self.transforms:
            if rng.random() < t.p:
                x = t(x, sr, rng)
        return x


@dataclass
class VocalTract:
    """Vocal-tract-length perturbation (Jaitly & Hinton 2013) on log-mel features: the mel axis
    stretched by a factor in `warp` (above 1: a shorter tract, formants moved up)."""
    warp: tuple[float, float] = (0.9, 1.1)
    p: float = 0.5

    def __call__(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        alpha = _uniform(rng, self.warp)
        bins = feats.shape[1]
        source = np.clip(np.arange(bins) / alpha, 0, bins - 1)  # output bin b reads input bin b / alpha
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, bins - 1)
        frac = (source - low).astype(feats.dtype)
        return feats[:, low] * (1 - frac) + feats[:, high] * frac
