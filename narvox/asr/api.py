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
from typing import Sequence, Union

import numpy as np

from narvox.asr.segment import has_speech, split_at_silences
from narvox.audio import read_audio, resample, to_mono
from narvox.errors import AudioError, NarvoxError
from narvox.text.tokens import tokens_to_text

log = logging.getLogger(__name__)
PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained" / "asr"
AudioInput = Union[str, Path, np.ndarray, tuple]


@dataclass
class Transcript:
    source: str
    text: str = ""
    tokens: list[str] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)  # start of each token, seconds
    error: str | None = None


class ASR:
    """One recognizer; the backend is ONNX Runtime for bundles, PyTorch for model directories."""

    def __init__(self, backend, max_seconds: float = 30.0):
        self.backend = backend
        self.max_seconds = max_seconds
        self.sample_rate = backend.frontend.sample_rate

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = "paraformer", method: str = "greedy",
                        providers: list[str] | None = None, num_threads: int = 2, **kwargs) -> "ASR":
        """A shipped model by name (`paraformer`, `ctc`), a bundle directory (narvox.json) or a
        trained model directory (model.pt)."""
        path = Path(name_or_dir)
        if not path.exists() and (PRETRAINED / str(name_or_dir)).is_dir():
            path = PRETRAINED / str(name_or_dir)
        if (path / "narvox.json").is_file():
            from narvox.runtime.asr import OnnxASR
            return cls(_OnnxBackend(OnnxASR(path, providers, num_threads), method), **kwargs)
        if (path / "model.pt").is_file():
            return cls(_TorchBackend(path, method, num_threads), **kwargs)
        shipped = sorted(p.name for p in PRETRAINED.iterdir()) if PRETRAINED.is_dir() else []
        raise NarvoxError(f"'{name_or_dir}' is neither a shipped model {shipped}, a bundle "
                          "directory (narvox.json) nor a model directory (model.pt)")

    def _load(self, item: AudioInput) -> tuple[str, np.ndarray]:
        if isinstance(item, (str, Path)):
            samples, _ = read_audio(item, sample_rate=self.sample_rate)
            return str(item), samples
        if isinstance(item, tuple):  # (array, sample_rate)
            samples, sr = item
            samples = to_mono(np.asarray(samples, dtype=np.float32))
            return "<array>", resample(samples, sr, self.sample_rate)
        samples = np.asarray(item, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioError(f"an array input must be mono [T] at {self.sample_rate} Hz "
                             f"(or pass (array, sample_rate)); got shape {samples.shape}")
        return "<array>", samples

    def transcribe(self, inputs: AudioInput | Sequence[AudioInput], batch_size: int = 8):
        """Paths, arrays at the model's rate, or (array, sample_rate) pairs -> Transcript(s).

        A file that cannot be read gets a Transcript with `error` set (and is logged by name);
        the others are still transcribed. Silence gives an empty transcript. Recordings longer
        than `max_seconds` are split at pauses and stitched back together.
        """
        single = not isinstance(inputs, (list, tuple)) or (
            isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], int))
        items = [inputs] if single else list(inputs)
        results: list[Transcript] = []
        pieces: list[tuple[int, float, np.ndarray]] = []  # (result index, offset seconds, samples)
        for item in items:
            try:
                source, samples = self._load(item)
            except AudioError as e:
                log.error("%s", e)
                results.append(Transcript(source=str(item) if isinstance(item, (str, Path)) else "<array>",
                                          error=str(e)))
                continue
            results.append(Transcript(source=source))
            if not has_speech(samples, self.sample_rate):
                continue
            for start, end in split_at_silences(samples, self.sample_rate, self.max_seconds):
                if end - start >= int(0.1 * self.sample_rate):  # shorter than any word
                    pieces.append((len(results) - 1, start / self.sample_rate, samples[start:end]))
        pieces.sort(key=lambda p: len(p[2]))  # similar lengths batch with less padding
        decoded: dict[int, list] = {}
        for i in range(0, len(pieces), batch_size):
            chunk = pieces[i:i + batch_size]
            for (index, offset, _), (ids, times) in zip(chunk, self.backend.recognize([p[2] for p in chunk])):
                decoded.setdefault(index, []).append((offset, ids, times))
        for index, parts in decoded.items():  # stitch the pieces of a recording in time order
            r = results[index]
            for offset, ids, times in sorted(parts, key=lambda p: p[0]):
                r.tokens += [self.backend.symbols[t] for t in ids]
                r.timestamps += [round(offset + t, 3) for t in times]
            r.text = tokens_to_text(r.tokens)
        return results[0] if single else results


class _OnnxBackend:
    def __init__(self, runtime, method: str):
        self.runtime, self.method = runtime, method
        self.frontend = runtime.frontend
        self.symbols = runtime.tokens.symbols

    def recognize(self, audio: list[np.ndarray]):
        return self.runtime.recognize([self.frontend(a) for a in audio], self.method)


class _TorchBackend:
    def __init__(self, model_dir: Path, method: str, num_threads: int = 2):
        import torch
        torch.set_num_threads(num_threads)
        from narvox.asr.build import load_model
        from narvox.asr.frontend import AsrFrontend
        from narvox.text.tokens import TokenTable
        self.torch = torch
        self.model, config = load_model(model_dir)
        self.kind = config["kind"]
        self.frontend = AsrFrontend.for_model(self.kind, model_dir, config.get("lfr_m", 7), config.get("lfr_n", 6))
        self.symbols = TokenTable.load(model_dir / "tokens.txt").symbols
        self.method = {"greedy": "ctc_greedy", "beam": "ctc_beam"}.get(method, method)

    def recognize(self, audio: list[np.ndarray]):
        feats = [self.frontend(a) for a in audio]
        lens = self.torch.tensor([len(f) for f in feats])
        x = self.torch.zeros(len(feats), int(lens.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            x[i, :len(f)] = self.torch.from_numpy(f)
        if self.kind == "paraformer":
            return self.model.transcribe(x, lens)
        return self.model.transcribe(x, lens, self.method)
