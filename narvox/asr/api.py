"""`narvox.ASR`: transcribe files or arrays with a shipped model, an exported bundle or a
trained PyTorch model directory.

    asr = narvox.ASR.from_pretrained("paraformer")
    asr.transcribe("a.flac").text
    asr.transcribe(["a.flac", "b.wav"], batch_size=8)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np

from narvox import registry
from narvox.asr.segment import has_speech, split_at_silences
from narvox.audio import audio_input, resample
from narvox.bundle import MANIFEST, locate, shipped
from narvox.errors import AudioError, NarvoxError
from narvox.text.tokens import tokens_to_text

log = logging.getLogger(__name__)
AudioInput = Union[str, Path, np.ndarray, tuple]


@dataclass
class Transcript:
    source: str
    text: str = ""
    tokens: list[str] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)  # start of each token, seconds
    duration: float = 0.0                                    # seconds of audio heard
    error: str | None = None


@dataclass
class _Piece:
    index: int           # which input it belongs to
    offset: int          # first sample within the input
    samples: np.ndarray
    depth: int = 0       # how many times it was split after the model stopped early


# A piece is re-decoded in smaller pieces when its tokens stop this long before its audio ends
# while speech goes on (Paraformer can emit </s> early on audio longer than it was trained on).
EARLY_STOP_SECONDS = 2.0
MAX_SPLIT_DEPTH = 3


class ASR:
    """One recognizer; the backend is ONNX Runtime for bundles, PyTorch for model directories.

    Recordings are cut at pauses into pieces no longer than `max_seconds`, which defaults to the
    longest utterance the model was trained on (recorded in the bundle) and never exceeds it.
    """

    def __init__(self, backend, max_seconds: float | None = None):
        self.backend = backend
        trained = backend.max_seconds or 30.0
        self.max_seconds = min(max_seconds or trained, trained)
        self.sample_rate = backend.frontend.sample_rate

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = "ctc", method: str = "greedy",
                        providers: list[str] | None = None, num_threads: int = 2, **kwargs) -> "ASR":
        """A shipped model by name (`ctc`, the default; `attention`, most accurate with
        method="beam"; `paraformer`), a bundle directory (narvox.json) or a trained model
        directory (model.pt). `method`: greedy | beam | rescore, as the model offers; a model
        directory of several heads also takes `<head>_<method>` (`attention_beam`)."""
        path = Path(name_or_dir)
        if (path / "model.pt").is_file() and not (path / MANIFEST).is_file():
            return cls(_TorchBackend(path, method, num_threads), **kwargs)
        if not (locate(name_or_dir, "asr") / MANIFEST).is_file():
            raise NarvoxError(f"'{name_or_dir}' is neither a shipped model ({', '.join(shipped('asr'))}), "
                              "a bundle directory (narvox.json) nor a model directory (model.pt)")
        from narvox.runtime.asr import OnnxASR
        return cls(_OnnxBackend(OnnxASR(name_or_dir, providers, num_threads), method), **kwargs)

    @staticmethod
    def _name(item: AudioInput, position: int) -> str:
        """How an input is named in its transcript and its errors: a path as given, an array by
        its position in the call."""
        return str(item) if isinstance(item, (str, Path)) else f"<array {position}>"

    def _load(self, item: AudioInput, position: int) -> tuple[str, np.ndarray]:
        """(name to report, mono float32 samples at the model's rate) of one input."""
        source = self._name(item, position)
        samples, rate = audio_input(item, self.sample_rate, source)
        if rate < self.sample_rate:
            log.warning("%s: recorded at %d Hz, below the %d Hz this model was trained on; its upper "
                        "band is missing and accuracy will suffer", source, rate, self.sample_rate)
        return source, resample(samples, int(rate), self.sample_rate)

    def transcribe(self, inputs: AudioInput | Sequence[AudioInput], batch_size: int = 8):
        """Paths, arrays at the model's rate, or (array, sample_rate) pairs -> Transcript(s).

        An input that cannot be read or used gets a Transcript with `error` set naming it (and is
        logged); the others are still transcribed. Silence gives an empty transcript.
        """
        single = not isinstance(inputs, (list, tuple)) or (
            isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], (int, np.integer)))
        results = list(self.transcribe_iter([inputs] if single else inputs, batch_size))
        return results[0] if single else results

    def transcribe_iter(self, inputs: Iterable[AudioInput], batch_size: int = 8) -> Iterator[Transcript]:
        """Transcripts in input order, each as soon as its group of `batch_size` inputs is done:
        memory is bounded by one group, not by the whole input list."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise NarvoxError(f"batch_size must be a positive integer, got {batch_size!r}")
        group: list[AudioInput] = []
        for position, item in enumerate(inputs):
            group.append(item)
            if len(group) == batch_size:
                yield from self._transcribe_group(group, position + 1 - len(group), batch_size)
                group = []
        if group:
            yield from self._transcribe_group(group, position + 1 - len(group), batch_size)

    def _transcribe_group(self, items: list[AudioInput], first: int, batch_size: int) -> list[Transcript]:
        results: list[Transcript] = []
        pieces: list[_Piece] = []
        for i, item in enumerate(items):
            try:
                source, samples = self._load(item, first + i)
            except AudioError as e:
                log.error("%s", e)
                results.append(Transcript(source=self._name(item, first + i), error=str(e)))
                continue
            results.append(Transcript(source=source, duration=round(len(samples) / self.sample_rate, 3)))
            if has_speech(samples, self.sample_rate):
                pieces += self._split(i, 0, samples, self.max_seconds)
        decoded = self._recognize(pieces, batch_size, results)
        for piece, ids, times in sorted(decoded, key=lambda d: (d[0].index, d[0].offset)):
            r = results[piece.index]
            r.tokens += [self.backend.symbols[t] for t in ids]
            r.timestamps += [round(piece.offset / self.sample_rate + t, 3) for t in times]
        for r in results:
            r.text = tokens_to_text(r.tokens, self.backend.symbol_form)
        return results

    def _split(self, index: int, offset: int, samples: np.ndarray, max_seconds: float,
               depth: int = 0) -> list[_Piece]:
        min_samples = int(0.1 * self.sample_rate)  # shorter than any word
        return [_Piece(index, offset + start, samples[start:end], depth)
                for start, end in split_at_silences(samples, self.sample_rate, max_seconds)
                if end - start >= min_samples]

    def _stopped_early(self, piece: _Piece, times: list[float]) -> bool:
        """The tokens end well before the piece's audio, and there is speech in between."""
        heard = int(((times[-1] if times else 0.0) + 1.0) * self.sample_rate)
        tail = piece.samples[heard:]
        return len(tail) > EARLY_STOP_SECONDS * self.sample_rate and has_speech(tail, self.sample_rate)

    def _recognize(self, pieces: list[_Piece], batch_size: int, results: list[Transcript]):
        """(piece, token ids, start seconds within the piece) for every piece; a piece the model
        stopped early on is decoded again in halves, down to MAX_SPLIT_DEPTH."""
        pieces = sorted(pieces, key=lambda p: len(p.samples))  # similar lengths: less padding
        decoded, again = [], []
        for i in range(0, len(pieces), batch_size):
            chunk = pieces[i:i + batch_size]
            for piece, (ids, times) in zip(chunk, self.backend.recognize([p.samples for p in chunk])):
                if not self._stopped_early(piece, times):
                    decoded.append((piece, ids, times))
                    continue
                seconds = len(piece.samples) / self.sample_rate
                where = (f"{results[piece.index].source} {piece.offset / self.sample_rate:.1f}-"
                         f"{piece.offset / self.sample_rate + seconds:.1f} s")
                if piece.depth == MAX_SPLIT_DEPTH or seconds < 2 * EARLY_STOP_SECONDS:
                    log.warning("%s: the model's tokens stop %.1f s before this piece's speech ends",
                                where, seconds - (times[-1] if times else 0.0))
                    decoded.append((piece, ids, times))
                    continue
                log.info("%s: tokens stop early; decoding it again in shorter pieces", where)
                again += self._split(piece.index, piece.offset, piece.samples, seconds / 2, piece.depth + 1)
        return decoded + (self._recognize(again, batch_size, results) if again else [])


class _OnnxBackend:
    def __init__(self, runtime, method: str):
        self.runtime, self.method = runtime, runtime.method(method)
        self.frontend = runtime.frontend
        self.symbols = runtime.tokens.symbols
        self.max_seconds = runtime.meta.get("max_seconds")  # longest training utterance
        self.symbol_form = runtime.meta.get("symbol_form")

    def recognize(self, audio: list[np.ndarray]):
        return self.runtime.recognize([self.frontend(a) for a in audio], self.method)


class _TorchBackend:
    def __init__(self, model_dir: Path, method: str, num_threads: int = 2):
        import torch
        torch.set_num_threads(num_threads)
        from narvox.asr.build import load_model, longest_training_utterance
        from narvox.asr.frontend import AsrFrontend
        from narvox.text.tokens import TokenTable, read_tokenizer_meta
        self.torch = torch
        self.model, config = load_model(model_dir)
        heads = registry.training_kind(config["kind"], where=model_dir).bundles
        decoding = registry.decoding(method, heads, model_dir)
        # a model of several heads (CTC and attention) is told which one decodes, and how
        self.method = (decoding.name,) if len(heads) > 1 else ()
        self.frontend = AsrFrontend.for_config(config, model_dir)
        self.symbols = TokenTable.load(model_dir / "tokens.txt").symbols
        self.max_seconds = longest_training_utterance(model_dir)
        self.symbol_form = read_tokenizer_meta(model_dir).get("form")

    def recognize(self, audio: list[np.ndarray]):
        feats = [self.frontend(a) for a in audio]
        lens = self.torch.tensor([len(f) for f in feats])
        x = self.torch.zeros(len(feats), int(lens.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            x[i, :len(f)] = self.torch.from_numpy(f)
        return self.model.transcribe(x, lens, *self.method)
