"""Independent, offline judges of synthesized speech.

A TTS model scored by narvox's own recognizer is graded by a relative: both learnt from the same
corpus and share its blind spots. These judges owe narvox nothing:

- `PocketSphinxJudge`: CMU PocketSphinx 5 with the US English acoustic model, language model and
  dictionary its wheel ships (a classic GMM/HMM recognizer); its transcripts go to
  `judge_intelligibility` (WER/CER against the text the TTS was asked to say).
- `SpeakerSimilarity`: cosine similarity of Resemblyzer's d-vector utterance embeddings (a GE2E
  speaker encoder with pretrained weights in its wheel): does the synthesized voice sound like
  the reference speaker?

Both come with the `judge` extra (`pip install narvox[judge]`). Importing this module imports
neither: PocketSphinx is loaded by `PocketSphinxJudge()`, Resemblyzer (and torch) by
`SpeakerSimilarity()`.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterable, Iterator, Sequence

import numpy as np

from narvox.audio import as_float_audio, resample, to_mono
from narvox.errors import AudioError
from narvox.eval.wer import error_rates
from narvox.text.normalize import normalize

SAMPLE_RATE = 16000  # what both judges' models were trained on

# WER/CER of a judge's transcripts against the texts the TTS was given: narvox.eval.wer's scoring,
# so a TTS's intelligibility and an ASR's accuracy are comparable numbers.
judge_intelligibility = error_rates


def _prepare(audio, sample_rate: int, source: str) -> np.ndarray:
    """Mono float32 at 16 kHz, checked (empty, NaN, unsupported dtypes raise AudioError)."""
    samples = to_mono(as_float_audio(audio, source))
    return resample(samples, int(sample_rate), SAMPLE_RATE)


class PocketSphinxJudge:
    """Transcribes audio with PocketSphinx's bundled US English models.

    `config` goes to `pocketsphinx.Decoder` (e.g. `hmm=`, `lm=`, `dict=` for other models).
    One decoder per judge: use one judge per thread.
    """

    def __init__(self, **config) -> None:
        from pocketsphinx import Decoder
        config.setdefault("loglevel", "FATAL")  # its INFO log is hundreds of lines per utterance
        self._decoder = Decoder(samprate=SAMPLE_RATE, **config)

    def transcribe_one(self, audio, sample_rate: int, source: str = "<audio>") -> str:
        samples = _prepare(audio, sample_rate, source)
        pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        if not pcm.any():
            return ""  # digital silence: the decoder would otherwise guess a word
        decoder = self._decoder
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return normalize(hyp.hypstr) if hyp is not None else ""

    def transcribe(self, batch: Iterable[tuple[np.ndarray, int]]) -> list[str]:
        """[(audio, sample_rate), ...] -> lower-case normalised transcripts, in order."""
        return [self.transcribe_one(audio, sr, f"utterance {i}")
                for i, (audio, sr) in enumerate(batch)]


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SpeakerSimilarity:
    """Resemblyzer speaker embeddings and their cosine similarity.

    `num_threads` caps torch's threads while embedding (the model is a small LSTM; on a busy
    machine one thread is much faster than many); None leaves torch's setting alone.
    """

    def __init__(self, device: str = "cpu", num_threads: int | None = None) -> None:
        try:
            with warnings.catch_warnings():
                # resemblyzer imports scipy.ndimage.morphology, deprecated since SciPy 1.8
                warnings.simplefilter("ignore", DeprecationWarning)
                from resemblyzer import VoiceEncoder, preprocess_wav
        except ModuleNotFoundError as e:
            if e.name != "pkg_resources":
                raise
            raise ImportError(
                "resemblyzer needs the webrtcvad module, and the one installed is PyPI's "
                "webrtcvad 2.0.10, which imports pkg_resources (gone from setuptools >= 81); "
                "install the binary build of the same module over it: "
                "`pip install --force-reinstall --no-deps webrtcvad-wheels`") from e
        self._preprocess = preprocess_wav
        self._encoder = VoiceEncoder(device=device, verbose=False)
        self.num_threads = num_threads

    def embed(self, audio, sample_rate: int, source: str = "<audio>") -> np.ndarray:
        """The L2-normalised utterance embedding (256 floats). Resemblyzer's preprocessing
        normalises the volume and cuts long silences (WebRTC VAD); audio in which the VAD finds
        no speech raises AudioError."""
        samples = _prepare(audio, sample_rate, source)
        with np.errstate(all="ignore"):  # log10 of silence in its volume normalisation
            wav = self._preprocess(samples, source_sr=None)
        if len(wav) == 0:
            raise AudioError(f"{source}: no speech found (Resemblyzer's voice activity detector "
                             "kept nothing)")
        with _torch_threads(self.num_threads):
            return self._encoder.embed_utterance(wav.astype(np.float32, copy=False))

    def similarity(self, a, sr_a: int, b, sr_b: int) -> float:
        """Cosine similarity of the two utterances' embeddings, in [-1, 1]."""
        return cosine(self.embed(a, sr_a, "first audio"), self.embed(b, sr_b, "second audio"))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
