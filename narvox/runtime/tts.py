"""TTS bundles on ONNX Runtime, without torch: the text frontend, the generation loop of the
bundle's backend (narvox.tts.decoding for VALL-E, narvox.tts.mask_predict for the masked one,
narvox.tts.pseudo_ar for the pseudo-AR one) over its graphs, shipped voices, and the codec the bundle names.

    tts = OnnxTTS("ar")                        # a bundle directory or a shipped name
    codes, phones = tts.voice(sorted(tts.voices)[0])
    audio = tts.decode(tts.generate([tts.phones("Hello.")], [codes], [phones], GenerateOptions(seed=0)))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from narvox.bundle import Bundle, locate, read_bundle
from narvox.errors import NarvoxError
from narvox.runtime.codec import OnnxCodec
from narvox.runtime.session import GraphSession
from narvox.text.tokens import PhoneTokenizer, TokenTable
from narvox.tts import decoding, mask_predict, pseudo_ar


class _Graphs:
    """A bundle's sessions as its generation loop's graphs (ValleGraphs or MaskedGraphs)."""

    def __init__(self, bundle: Bundle, providers, num_threads: int):
        m = bundle.settings
        self.conditioning, self.n_codebooks, self.codebook_size = m["conditioning"], m["n_codebooks"], m["codebook_size"]
        self.d_model = m["d_model"]
        self.lookahead = m.get("lookahead")  # pseudo-AR: frames past the span a step reads (None: all)
        self.sessions = {role: GraphSession(bundle, role, providers, num_threads)
                         for role, name in bundle.files.items() if name.endswith(".onnx")}

    def encode(self, phones, phone_lens, prompt, prompt_lens) -> tuple:
        if self.conditioning == "aligned":
            return tuple(self.sessions["encode"](phones, phone_lens, prompt, prompt_lens))
        states = self.sessions["encode"](phones, phone_lens)
        return (*states, np.zeros(phones.shape, dtype=np.float32))  # no durations under prefix

    def _levels_inputs(self, text, text_lens, target, frame_cond):
        b, t = target.shape[0], target.shape[2]
        if text is None:  # aligned: one empty text slot stands in for no text
            text, text_lens = np.zeros((b, 1, self.d_model), dtype=np.float32), np.zeros(b, dtype=np.int64)
        if frame_cond is None:  # prefix: no phone on any frame
            frame_cond = np.zeros((b, t, self.d_model), dtype=np.float32)
        return text, text_lens, frame_cond[:, :t]


class _ValleGraphs(_Graphs):
    generate = staticmethod(decoding.generate)

    def __init__(self, bundle: Bundle, providers, num_threads: int):
        super().__init__(bundle, providers, num_threads)
        m = bundle.settings
        self.layers, self.heads, self.head_dim = m["layers"], m["heads"], m["head_dim"]

    def lm(self, tokens, text, frame_cond, is_text, is_prompt, positions, key_valid, key_is_text, cache):
        if cache is None:
            cache = (np.zeros((self.layers, len(tokens), self.heads, 0, self.head_dim), dtype=np.float32),) * 2
        logits, keys, values = self.sessions["lm"](tokens, text, frame_cond, is_text, is_prompt, positions, key_valid,
                                                   key_is_text, *cache)
        return logits, (keys, values)

    def residual(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level):
        text, text_lens, frame_cond = self._levels_inputs(text, text_lens, target, frame_cond)
        (logits,) = self.sessions["residual"](text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond,
                                              level)
        return logits


class _MaskedGraphs(_Graphs):
    generate = staticmethod(mask_predict.generate)

    def levels(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, known):
        text, text_lens, frame_cond = self._levels_inputs(text, text_lens, target, frame_cond)
        (logits,) = self.sessions["levels"](text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond,
                                            level, known)
        return logits


class _ParGraphs(_MaskedGraphs):
    generate = staticmethod(pseudo_ar.generate)
    stream = staticmethod(pseudo_ar.stream)


BACKENDS = {"valle": _ValleGraphs, "masked": _MaskedGraphs, "par": _ParGraphs}  # bundle kind prefix -> graphs


class OnnxTTS:
    """A TTS bundle and what an app needs around it: phones from text, voices, generation, audio."""

    def __init__(self, bundle: str | Path | Bundle = "ar", providers: list[str] | None = None, num_threads: int = 2,
                 codec: OnnxCodec | None = None):
        self.bundle = read_bundle(bundle, family="tts")
        m = self.bundle.settings
        self.backend = self.bundle.kind.rsplit("_", 1)[0]
        self.graphs = BACKENDS[self.backend](self.bundle, providers, num_threads)
        self.conditioning, self.n_codebooks = m["conditioning"], m["n_codebooks"]
        self.codebook_size, self.d_model = m["codebook_size"], m["d_model"]
        self.prompt_seconds = m["prompt_seconds"]  # the voice crop of the aligned conditioning
        self.span = m.get("span")  # pseudo-AR: its default share of the target per step (None: another backend)
        self.refine_steps = m.get("refine_steps")  # pseudo-AR: its default refinement passes
        self.sampling = dict(m.get("sampling", {}))  # default SamplingOptions fields, chosen by its recipe
        self.tokenizer = PhoneTokenizer(TokenTable.load(self.bundle.file("tokens")), m["language"])
        self.codec = codec or self._codec(providers, num_threads)
        if self.codec.identity() != m["codec"]:
            raise NarvoxError(f"{self.bundle.path} speaks codec {m['codec']}, but {self.codec.bundle.path} is "
                              f"{self.codec.identity()}")
        self.sample_rate, self.hop_length = self.codec.sample_rate, self.codec.hop_length
        with np.load(self.bundle.file("voices")) as v:
            self.voices = {str(name): (v[f"codes_{i}"].astype(np.int64), v[f"phones_{i}"].astype(np.int64))
                           for i, name in enumerate(v["names"])}
        self.refiner = None  # pseudo-AR: another model's graphs that refine codebook 1 (attach_refiner)

    def _codec(self, providers, num_threads) -> OnnxCodec:
        """The codec bundle narvox.json names: a shipped name, or a path relative to this bundle."""
        name = self.bundle.settings["codec_bundle"]
        relative = self.bundle.path / name
        return OnnxCodec(relative if relative.is_dir() else locate(name, "codec"), providers=providers,
                         num_threads=num_threads)

    def phones(self, text: str) -> np.ndarray:
        """Phone ids of a text (normalised, phonemized by espeak-ng); TextError if unpronounceable."""
        return np.array(self.tokenizer.encode(text), dtype=np.int64)

    def voice(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A shipped voice's prompt: codes [Q, P] and its text's phone ids."""
        if name not in self.voices:
            raise NarvoxError(f"no voice '{name}' in {self.bundle.path} (voices: {', '.join(sorted(self.voices))})")
        return self.voices[name]

    def generate(self, phones: list[np.ndarray], prompts: list[np.ndarray],
                 prompt_phones: list[np.ndarray] | None = None, options: decoding.GenerateOptions | None = None
                 ) -> list[np.ndarray]:
        options = options or decoding.GenerateOptions()
        if self.refiner is not None:
            return pseudo_ar.generate(self.graphs, phones, prompts, prompt_phones, options, refiner=self.refiner)
        return self.graphs.generate(self.graphs, phones, prompts, prompt_phones, options)

    @property
    def streams(self) -> bool:
        """Whether the backend finishes its codes span by span (pseudo-AR), so audio can start early."""
        return hasattr(self.graphs, "stream")

    def stream(self, phones: list[np.ndarray], prompts: list[np.ndarray], prompt_phones: list[np.ndarray] | None,
               options: decoding.GenerateOptions):
        """narvox.tts.pseudo_ar.stream on this bundle: (codes, final frames) after every span."""
        if not self.streams:
            raise NarvoxError(f"{self.bundle.path}: a {self.backend} bundle does not stream spans (pseudo-AR does)")
        return self.graphs.stream(self.graphs, phones, prompts, prompt_phones, options)

    def decode(self, codes: list[np.ndarray]) -> list[np.ndarray]:
        return decode_codes(self.codec, codes)


def attach_refiner(backend, refiner) -> None:
    """Hands a pseudo-AR backend's refinement of codebook 1 to another model (PALLE's separate
    stage-2 model): a masked or pseudo-AR backend (OnnxTTS or narvox.tts.api's PyTorch stand-in)
    on the same codec and conditioning."""
    if not backend.streams:
        raise NarvoxError("only the pseudo-AR backend takes a refiner")
    if not hasattr(refiner.graphs, "levels"):
        raise NarvoxError("a refiner must be a masked or pseudo-AR model (it refines by mask-predict)")
    if refiner.codec.identity() != backend.codec.identity() or refiner.conditioning != backend.conditioning:
        raise NarvoxError(f"the refiner ({refiner.conditioning}, codec {refiner.codec.identity()}) does not match "
                          f"the pseudo-AR model ({backend.conditioning}, codec {backend.codec.identity()})")
    backend.refiner = refiner.graphs


def decode_codes(codec: OnnxCodec, codes: list[np.ndarray]) -> list[np.ndarray]:
    """Codes [Q, F] per item -> float32 audio per item (one padded batch, each row as alone)."""
    lengths = [c.shape[1] for c in codes]
    if max(lengths) == 0:
        return [np.zeros(0, dtype=np.float32) for _ in codes]
    audio = codec.decode(decoding.pad(codes)[0], lengths)
    return [audio[i, :n * codec.hop_length] for i, n in enumerate(lengths)]

