"""Choosing codec tokens from a model's logits, torch-free: the PyTorch models and the ONNX
runtime call the same functions, so a seeded synthesis gives the same codes in both.

Every row of a batch draws from its own random stream (seeded alike), so what an utterance gets
never depends on its batch-mates, sampled or greedy.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingOptions:
    """temperature 0 is greedy (argmax). top_k 0 and top_p 1 keep every token.

    repetition_window / repetition_ratio: VALL-E 2's repetition-aware sampling. When the token
    drawn already fills more than `ratio` of the last `window` tokens of its row, it is drawn
    again from the whole distribution (no top-k/top-p), which breaks the loops that nucleus
    sampling falls into on silence and held vowels. ratio 0 turns it off.

    cfg_scale: classifier-free guidance, logits = uncond + scale * (cond - uncond); 1 is none.
    """
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_window: int = 10
    repetition_ratio: float = 0.1
    cfg_scale: float = 1.0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.repetition_ratio <= 1 or self.repetition_window < 1:
            raise ValueError("repetition_ratio must be in [0, 1] and repetition_window >= 1")
        if self.cfg_scale < 0:
            raise ValueError(f"cfg_scale must be >= 0, got {self.cfg_scale}")

    @classmethod
    def parse(cls, pairs: list[str] | str) -> dict:
        """Options written as KEY=VALUE (a list, or one space-separated string) -> a checked dict
        of them, typed as the fields are: what recipes and the export command take."""
        fields = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        out = {}
        for pair in pairs.split() if isinstance(pairs, str) else pairs:
            key, _, value = pair.partition("=")
            if key not in fields or not value:
                raise ValueError(f"sampling option {pair!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
            out[key] = fields[key](value)
        cls(**out)  # range checks
        return out

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


def row_generators(seed: int | None, n: int) -> list[np.random.Generator]:
    """One stream per batch row, all seeded by `seed`: a row draws what it would draw alone."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    return [np.random.default_rng(seed) for _ in range(n)]


def guide(cond: np.ndarray, uncond: np.ndarray, scale: float) -> np.ndarray:
    """Classifier-free guidance on logits; a token either side rules out (-inf) stays out."""
    with np.errstate(invalid="ignore"):
        mixed = uncond + scale * (cond - uncond)
    return np.where(np.isneginf(cond) | np.isneginf(uncond), -np.inf, mixed)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def filter_logits(logits: np.ndarray, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """[B, V] logits with the tokens outside top-k and outside the top-p nucleus set to -inf."""
    logits = logits.astype(np.float64, copy=True)
    if 0 < top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits[logits < kth] = -np.inf
    if top_p < 1:
        order = np.argsort(-logits, axis=-1)
        probs = np.take_along_axis(_softmax(logits), order, axis=-1)
        # a token stays when the tokens more probable than it hold less than top_p
        before = np.cumsum(probs, axis=-1) - probs
        drop = np.zeros_like(logits, dtype=bool)
        np.put_along_axis(drop, order, before >= top_p, axis=-1)
        logits[drop] = -np.inf
    return logits


def _draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    return int(min(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum()), len(probs) - 1))


def sample(logits: np.ndarray, options: SamplingOptions, rngs: list[np.random.Generator],
           history: np.ndarray | None = None) -> np.ndarray:
    """One token per row of logits [B, V]. history [B, t]: the row's tokens so far (for
    repetition-aware sampling). Returns int64 [B]."""
    logits = np.asarray(logits, dtype=np.float64)
    if options.greedy:
        return logits.argmax(axis=-1).astype(np.int64)
    scaled = logits / options.temperature
    probs = _softmax(filter_logits(scaled, options.top_k, options.top_p))
    tokens = np.array([_draw(p, rng) for p, rng in zip(probs, rngs)], dtype=np.int64)
    if options.repetition_ratio > 0 and history is not None and history.shape[1] > 0:
        recent = history[:, -options.repetition_window:]
        repeats = (recent == tokens[:, None]).sum(axis=1)
        full = _softmax(scaled)
        for b in np.flatnonzero(repeats > options.repetition_ratio * options.repetition_window):
            tokens[b] = _draw(full[b], rngs[b])
    return tokens
