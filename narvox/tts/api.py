"""`narvox.TTS`: text to speech with a shipped model, an exported bundle or a trained model directory.

    tts = narvox.TTS.from_pretrained("ar")
    speech = tts.synthesize("Hello world.", voice=tts.voices[0], seed=0)
    speech.audio, speech.sample_rate
    tts.synthesize(["One.", "Two."], prompt="me.wav", prompt_text="what I say in me.wav")

The voice comes from a shipped voice (a prompt packed with the model) or a prompt recording,
1-10 s of speech. Long texts are split into sentences, synthesized in one batch and joined with
short pauses. Bundles run on ONNX Runtime without torch; model directories on PyTorch.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from narvox.asr.segment import has_speech
from narvox.audio import audio_input, resample
from narvox.bundle import MANIFEST, locate, shipped
from narvox.errors import AudioError, NarvoxError, TextError
from narvox.tts import decoding
from narvox.tts.sampling import SamplingOptions

log = logging.getLogger(__name__)
MIN_PROMPT_SECONDS, MAX_PROMPT_SECONDS = 1.0, 10.0
PAUSE_SECONDS = 0.25          # between the sentences of one text
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass
class Speech:
    text: str
    audio: np.ndarray   # float32 mono
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class TTS:
    """One synthesizer. `backend`: narvox.runtime.tts.OnnxTTS, or the PyTorch stand-in for a
    model directory (same calls)."""

    def __init__(self, backend):
        self.backend = backend
        self.sample_rate = backend.sample_rate
        self.frame_rate = backend.codec.frame_rate
        self._asr = None

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = "ar", providers: list[str] | None = None,
                        num_threads: int = 2, codec: str | Path = "narvox",
                        refiner: str | Path | None = None) -> "TTS":
        """A shipped model by name (`ar`), a bundle directory (narvox.json) or a trained model
        directory (model.pt; it speaks through `codec`, which must be the one it was trained on).
        `refiner` (pseudo-AR only): another model, masked, that refines codebook 1 instead of the
        pseudo-AR model itself (PALLE's two models)."""
        tts = cls(_open_backend(name_or_dir, providers, num_threads, codec))
        if refiner is not None:
            from narvox.runtime.tts import attach_refiner
            attach_refiner(tts.backend, _open_backend(refiner, providers, num_threads, codec))
        return tts

    @property
    def voices(self) -> list[str]:
        return sorted(self.backend.voices)

    def synthesize(self, text: str | Sequence[str], voice: str | None = None, prompt=None,
                   prompt_text: str | None = None, duration: float | None = None, speed: float = 1.0,
                   seed: int | None = None, batch_size: int = 8, steps: Sequence[int] | None = None,
                   span: float | None = None, refine_steps: int | None = None, **sampling) -> Speech | list[Speech]:
        """Speech for a text or a list of texts, in one voice: a shipped `voice` (default: the
        first), or a `prompt` recording (path, array at the model's rate, or (array, rate)) with
        `prompt_text`, what it says (transcribed by narvox's ASR when omitted; only the prefix
        conditioning reads it). `duration`: seconds per text; `speed` > 1 speaks faster.
        `steps`: the masked and pseudo-AR backends' passes per codebook level (fewer is faster);
        `span`, `refine_steps`: the pseudo-AR backend's share of the target per step and its
        refinement passes (default: its bundle's, else the span it was trained on and 7). `sampling`: temperature, top_k, top_p,
        repetition_window, repetition_ratio, cfg_scale (default: the bundle's, then
        narvox.tts.sampling.SamplingOptions')."""
        texts = [text] if isinstance(text, str) else list(text)
        sentences, frames, options, prompt_codes, prompt_phones = self._plan(
            texts, voice, prompt, prompt_text, duration, speed, seed, steps, span, refine_steps, sampling)
        audio: list[np.ndarray] = []
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start:start + batch_size]
            generate = dataclasses.replace(options, durations=None if frames is None
                                           else tuple(frames[start:start + batch_size]))
            codes = self.backend.generate([p for _, p in chunk], [prompt_codes] * len(chunk),
                                          [prompt_phones] * len(chunk), generate)
            audio += self.backend.decode(codes)
        results = []
        for i, t in enumerate(texts):
            parts = [a for (j, _), a in zip(sentences, audio) if j == i]
            joined = [x for k, part in enumerate(parts) for x in ([self._pause(), part] if k else [part])]
            results.append(Speech(t, np.concatenate(joined).astype(np.float32), self.sample_rate))
        return results[0] if isinstance(text, str) else results

    def synthesize_stream(self, text: str, voice: str | None = None, prompt=None, prompt_text: str | None = None,
                          duration: float | None = None, speed: float = 1.0, seed: int | None = None,
                          steps: Sequence[int] | None = None, span: float | None = None, **sampling
                          ) -> Iterator[np.ndarray]:
        """The speech of `text` as float32 audio chunks (at `sample_rate`), each as soon as it is
        made: the pseudo-AR backend yields every span once it and the codec's context past it are
        final (its refinement is left out: it would revise audio already played); the other
        backends yield a sentence at a time. The chunks joined are the audio of the same codes
        decoded at once. Bad input is refused here, before any chunk."""
        sentences, frames, options, prompt_codes, prompt_phones = self._plan(
            [text], voice, prompt, prompt_text, duration, speed, seed, steps, span, 0, sampling)

        def chunks() -> Iterator[np.ndarray]:
            from narvox.runtime.codec import StreamingDecoder
            for k, (_, phones) in enumerate(sentences):
                if k:
                    yield self._pause()
                one = dataclasses.replace(options, durations=None if frames is None else (frames[k],))
                args = ([phones], [prompt_codes], [prompt_phones], one)
                if not self.backend.streams:
                    yield from self.backend.decode(self.backend.generate(*args))
                    continue
                decoder = StreamingDecoder(self.backend.codec)
                for codes, final in self.backend.stream(*args):
                    n = int(final[0])
                    chunk = decoder.push(codes[0, :, :n], final=n == codes.shape[2])
                    if len(chunk):
                        yield chunk
        return chunks()

    def _pause(self) -> np.ndarray:
        return np.zeros(int(PAUSE_SECONDS * self.sample_rate), dtype=np.float32)

    def _plan(self, texts: list, voice, prompt, prompt_text, duration, speed, seed, steps, span, refine_steps,
              sampling: dict) -> tuple[list[tuple[int, np.ndarray]], list[int] | None, decoding.GenerateOptions,
                                       np.ndarray, np.ndarray]:
        """Every check before any synthesis. Returns the sentences (text index, phone ids), frames
        per sentence (a given duration shared by phone count; None: the model's), the generation
        options but durations, and the prompt (codes [Q, P], phone ids of what it says)."""
        if not texts:
            raise TextError("no text to synthesize")
        try:
            options = decoding.GenerateOptions(
                sampling=SamplingOptions(**{**self.backend.sampling, **sampling}), seed=seed, speed=speed,
                steps=None if steps is None else tuple(steps),
                refine_steps=next(r for r in (refine_steps, getattr(self.backend, "refine_steps", None),
                                              decoding.GenerateOptions.refine_steps) if r is not None),
                span=span or getattr(self.backend, "span", None) or decoding.GenerateOptions.span)
        except (TypeError, ValueError) as e:
            raise NarvoxError(f"generation options: {e}") from e
        if duration is not None and duration <= 0:
            raise NarvoxError(f"duration must be > 0, got {duration}")
        if self.backend.conditioning == "prefix" and speed != 1.0:
            raise NarvoxError("this model ends on its own end token, so it has no speed control: "
                              "give a duration instead, or use an aligned model")
        prompt_codes, prompt_phones = self._prompt(voice, prompt, prompt_text)
        sentences = []  # (text index, phone ids)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise TextError(f"text {i} is empty")
            for sentence in SENTENCE_END.split(t.strip()):
                if any(c.isalnum() for c in sentence):
                    sentences.append((i, self.backend.phones(sentence)))
            if not any(j == i for j, _ in sentences):
                raise TextError(f"text {i} has nothing to pronounce: '{t}'")
        frames = None
        if duration is not None:  # each text's frames shared among its sentences by phone count
            frames = []
            for i, phones in sentences:
                total = sum(len(p) for j, p in sentences if j == i)
                frames.append(max(len(phones), round(duration * self.frame_rate * len(phones) / total)))
        return sentences, frames, options, prompt_codes, prompt_phones

    def _prompt(self, voice: str | None, prompt, prompt_text: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(codes [Q, P], phone ids of what the prompt says) of a shipped voice or a recording."""
        if voice is not None and prompt is not None:
            raise NarvoxError("give a voice or a prompt, not both")
        if prompt is None:
            if voice is None:
                if not self.backend.voices:
                    raise NarvoxError("this model ships no voices: give a prompt recording")
                voice = self.voices[0]
            if voice not in self.backend.voices:
                raise NarvoxError(f"unknown voice '{voice}' (voices: {', '.join(self.voices) or 'none'})")
            return self.backend.voices[voice]
        source = str(prompt) if isinstance(prompt, (str, Path)) else "<prompt array>"
        samples, rate = audio_input(prompt, self.sample_rate, source)
        samples = resample(samples, rate, self.sample_rate)
        seconds = len(samples) / self.sample_rate
        if seconds < MIN_PROMPT_SECONDS:
            raise AudioError(f"{source}: the prompt is {seconds:.2f} s; give at least {MIN_PROMPT_SECONDS:g} s of speech")
        if not has_speech(samples, self.sample_rate):
            raise AudioError(f"{source}: the prompt is silent")
        if seconds > MAX_PROMPT_SECONDS:
            log.warning("%s: the prompt is %.1f s; using its first %g s", source, seconds, MAX_PROMPT_SECONDS)
            samples = samples[:int(MAX_PROMPT_SECONDS * self.sample_rate)]
        if self.backend.conditioning == "aligned":  # the voice only: a crop as long as in training
            keep = int(self.backend.prompt_seconds * self.sample_rate)
            start = max(0, (len(samples) - keep) // 2)
            return self._encode(samples[start:start + keep]), np.zeros(0, dtype=np.int64)
        if prompt_text is None:
            prompt_text = self._transcribe(samples)
            log.info("%s: the prompt says (by narvox's ASR) '%s'", source, prompt_text)
        return self._encode(samples), self.backend.phones(prompt_text)

    def _encode(self, samples: np.ndarray) -> np.ndarray:
        return np.asarray(self.backend.codec.encode(samples[None]))[0, :self.backend.n_codebooks]

    def _transcribe(self, samples: np.ndarray) -> str:
        if self._asr is None:
            from narvox.asr.api import ASR
            self._asr = ASR.from_pretrained("ctc")
        text = self._asr.transcribe(samples).text
        if not text:
            raise AudioError("narvox's ASR heard no words in the prompt: give prompt_text")
        return text


def _open_backend(name_or_dir: str | Path, providers, num_threads: int, codec: str | Path):
    path = Path(name_or_dir)
    if (path / "model.pt").is_file() and not (path / MANIFEST).is_file():
        return _TorchTTS(path, codec, num_threads)
    if not (locate(name_or_dir, "tts") / MANIFEST).is_file():
        raise NarvoxError(f"'{name_or_dir}' is neither a shipped TTS model ({', '.join(shipped('tts')) or 'none'}), "
                          "a bundle directory (narvox.json) nor a model directory (model.pt)")
    from narvox.runtime.tts import OnnxTTS
    return OnnxTTS(name_or_dir, providers, num_threads)


class _TorchTTS:
    """A trained model directory with the calls of narvox.runtime.tts.OnnxTTS (no shipped voices)."""

    def __init__(self, model_dir: Path, codec: str | Path, num_threads: int):
        import torch
        from narvox.runtime.codec import OnnxCodec
        from narvox.text.tokens import load_tokenizer
        from narvox.tts.build import load_model
        torch.set_num_threads(num_threads)
        self.model, _, identity = load_model(model_dir)
        self.codec = OnnxCodec(codec, num_threads=num_threads)
        if self.codec.identity() != identity:
            raise NarvoxError(f"{model_dir} speaks codec {identity}, not {codec}'s {self.codec.identity()}")
        self.graphs = self.model.graphs()
        self.conditioning, self.n_codebooks = self.model.config.conditioning, self.model.config.n_codebooks
        self.prompt_seconds = self.model.config.prompt_seconds
        self.span = self.model.config.par_span if self.streams else None
        self.refine_steps = None  # a model directory carries no chosen refinement: GenerateOptions'
        self.sampling: dict = {}  # a model directory carries no chosen sampling: SamplingOptions'
        self.sample_rate = self.codec.sample_rate
        self.tokenizer = load_tokenizer(model_dir)
        self.voices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.refiner = None

    def phones(self, text: str) -> np.ndarray:
        return np.array(self.tokenizer.encode(text), dtype=np.int64)

    def generate(self, phones, prompts, prompt_phones, options):
        if self.refiner is not None:
            from narvox.tts import pseudo_ar
            return pseudo_ar.generate(self.graphs, phones, prompts, prompt_phones, options, refiner=self.refiner)
        return type(self.model).loop(self.graphs, phones, prompts, prompt_phones, options)

    @property
    def streams(self) -> bool:
        return hasattr(type(self.model), "stream_loop")

    def stream(self, phones, prompts, prompt_phones, options):
        if not self.streams:
            raise NarvoxError(f"a {type(self.model).__name__} does not stream spans (pseudo-AR does)")
        return type(self.model).stream_loop(self.graphs, phones, prompts, prompt_phones, options)

    def decode(self, codes: list[np.ndarray]) -> list[np.ndarray]:
        from narvox.runtime.tts import decode_codes
        return decode_codes(self.codec, codes)
