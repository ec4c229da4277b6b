"""How the masked backend generates, torch-free: MaskGCT/MAGNeT's iterative mask-predict, one
codebook level after another (coarse to fine). Every level starts masked; each pass predicts all
masked frames, keeps the most confident and masks the rest again, fewer each pass (a cosine
schedule), with the temperature annealed toward 0; a frame once kept is never masked again.
Classifier-free guidance runs the same items without their prompt in the same batch.

The loop runs against `MaskedGraphs`, the two computations a masked model offers, as its PyTorch
module (narvox.tts.masked) and its ONNX graph both do.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Protocol

import numpy as np

from narvox.tts.decoding import GenerateOptions, check_inputs, pad, phone_durations, regulate
from narvox.tts.sampling import guide, row_generators, sample

# Passes per level, then 1 for every level after these. 8,2,1 judged as well as MaskGCT's 16,4,2 on
# the dev set (ctc CER 62.2 vs 62.9 %) at 12 passes instead of 23 (egs/synth_en/tts/results/RESULTS.md).
DEFAULT_STEPS = (8, 2, 1)


class MaskedGraphs(Protocol):
    conditioning: str
    n_codebooks: int
    codebook_size: int

    def encode(self, phones: np.ndarray, phone_lens: np.ndarray, prompt: np.ndarray,
               prompt_lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Phone states [B, L, D] and predicted log(1 + frames) [B, L] (aligned; zeros under prefix)."""

    def levels(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level: np.ndarray,
               known: np.ndarray) -> np.ndarray:
        """Logits [B, T, V] of codebook level[b] from the levels below and the level's known frames."""


def steps_per_level(n_codebooks: int, steps: tuple[int, ...] | None) -> list[int]:
    steps = list(steps or DEFAULT_STEPS)
    if any(s < 1 for s in steps):
        raise ValueError(f"steps must be >= 1, got {steps}")
    return (steps + [1] * n_codebooks)[:n_codebooks]


def target_frames(prompt_lens: np.ndarray, prompt_phones: list[np.ndarray], phones: list[np.ndarray]) -> np.ndarray:
    """The prefix conditioning's length rule (MaskGCT, PALLE): speak the target at the prompt's
    rate, prompt frames * target phones / prompt phones."""
    rates = []
    for i, pp in enumerate(prompt_phones):
        if len(pp) == 0:
            raise ValueError(f"item {i}: the prompt's text is needed to set the length (or give a duration)")
        rates.append(prompt_lens[i] / len(pp))
    return np.maximum(np.round(np.array(rates) * [len(p) for p in phones]), 1).astype(np.int64)


@dataclasses.dataclass
class Conditioned:
    """A batch ready for a masked model's `levels` graph: text (prefix) or per-frame phone states
    (aligned), the prompt, and every item's length in frames (aligned: `phone_frames`, the frames
    of each phone [B, L])."""
    text: np.ndarray | None
    text_lens: np.ndarray
    prompt: np.ndarray
    prompt_lens: np.ndarray
    frame_cond: np.ndarray | None
    lengths: np.ndarray
    phone_frames: np.ndarray | None = None

    @property
    def real(self) -> np.ndarray:
        """[B, T] True on frames inside each item."""
        return np.arange(int(self.lengths.max()))[None] < self.lengths[:, None]


def condition(graphs: MaskedGraphs, phones: list[np.ndarray], prompts: list[np.ndarray],
              prompt_phones: list[np.ndarray] | None, options: GenerateOptions,
              like: Conditioned | None = None) -> Conditioned:
    """Encodes the text and sets every item's length: the duration predictor's (aligned), the
    prompt's speaking rate or the user's durations (prefix). `like`: a batch another model
    conditioned, whose lengths (and frames per phone) this one keeps, so that it can work on
    that model's codes (the pseudo-AR backend's separate refiner)."""
    q, b = graphs.n_codebooks, len(phones)
    check_inputs(q, phones, prompts, prompt_phones, options)
    prompt, prompt_lens = pad([p[:q] for p in prompts])
    if graphs.conditioning == "aligned":
        ph, lens = pad(phones)
        states, log_d = graphs.encode(ph, lens, prompt, prompt_lens)
        durations = like.phone_frames if like is not None else phone_durations(log_d, lens, options)
        lengths = durations.sum(1)
        return Conditioned(None, np.zeros(b, dtype=np.int64), prompt, prompt_lens,
                           regulate(states, durations, int(lengths.max())), lengths, durations)
    if prompt_phones is None:
        raise ValueError("the prefix conditioning needs the prompt's phones")
    if like is not None:
        lengths = like.lengths
    elif options.durations is not None:
        lengths = np.asarray(options.durations, dtype=np.int64)
    else:
        lengths = target_frames(prompt_lens, prompt_phones, phones)
    text, text_lens = pad([np.concatenate([pp, p]) for pp, p in zip(prompt_phones, phones)])
    text, _ = graphs.encode(text, text_lens, prompt, prompt_lens)
    return Conditioned(text, text_lens, prompt, prompt_lens, None, lengths)


def predict(graphs: MaskedGraphs, batch: Conditioned, codes: np.ndarray, known: np.ndarray, level: int,
            sampling, temperature: float, rngs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass of the `levels` graph: a code drawn for every frame of `level` not `known` [B, T],
    with classifier-free guidance (the same items without their prompt, in the same batch).
    Returns (rows, frames, codes drawn, their probabilities at `temperature`)."""
    b = codes.shape[0]
    guided = sampling.cfg_scale != 1
    twice = lambda x: x if not guided or x is None else np.concatenate([x, x])
    prompt_lens = (np.concatenate([batch.prompt_lens, np.zeros_like(batch.prompt_lens)]) if guided
                   else batch.prompt_lens)
    levels = np.full(b * (1 + guided), level, dtype=np.int64)
    logits = graphs.levels(twice(batch.text), twice(batch.text_lens), twice(batch.prompt), prompt_lens, twice(codes),
                           twice(batch.lengths), twice(batch.frame_cond), levels, twice(known)).astype(np.float64)
    if guided:
        logits = guide(logits[:b], logits[b:], sampling.cfg_scale)
    options_now = dataclasses.replace(sampling, temperature=temperature, repetition_ratio=0)
    rows, frames = np.nonzero(~known)
    drawn = sample(logits[rows, frames], options_now, [rngs[r] for r in rows])
    scaled = logits[rows, frames] / max(temperature, 1e-6)
    scaled -= scaled.max(axis=1, keepdims=True)
    confidence = np.exp(scaled[np.arange(len(rows)), drawn]) / np.exp(scaled).sum(axis=1)
    return rows, frames, drawn, confidence


def fill_level(graphs: MaskedGraphs, batch: Conditioned, codes: np.ndarray, level: int, n_steps: int,
               options: GenerateOptions, rngs) -> None:
    """Mask-predict codebook `level` of codes [B, Q, T] in place."""
    b, _, t = codes.shape
    real = batch.real
    known = ~real  # padding counts as known: it is never predicted
    for step in range(n_steps):
        temperature = options.sampling.temperature * (1 - step / n_steps)
        rows, frames, drawn, confidence = predict(graphs, batch, codes, known, level, options.sampling,
                                                  temperature, rngs)
        codes[rows, level, frames] = drawn
        score = np.full((b, t), np.inf)
        score[rows, frames] = confidence
        # how many stay masked after this pass: the cosine schedule, 0 after the last one
        remasked = np.floor(batch.lengths * math.cos(math.pi / 2 * (step + 1) / n_steps)).astype(np.int64)
        order = np.argsort(score, axis=1, kind="stable")  # least confident first
        again = np.arange(t)[None] < remasked[:, None]
        known = np.ones((b, t), dtype=bool)
        np.put_along_axis(known, order, ~again, axis=1)
        known |= ~real


def generate(graphs: MaskedGraphs, phones: list[np.ndarray], prompts: list[np.ndarray],
             prompt_phones: list[np.ndarray] | None, options: GenerateOptions,
             fill_first_level: Callable | None = None) -> list[np.ndarray]:
    """What TtsBackend.generate promises: per item codes [Q, F]. `fill_first_level(graphs, batch,
    codes, options, rngs)` fills codebook 1 another way (the pseudo-AR backend's); `options.steps`
    then counts the passes of levels 2..Q (default: DEFAULT_STEPS after its first)."""
    q = graphs.n_codebooks
    if fill_first_level is None:
        steps = steps_per_level(q, options.steps)
    else:
        steps = [0] + steps_per_level(q - 1, options.steps or DEFAULT_STEPS[1:])
    batch = condition(graphs, phones, prompts, prompt_phones, options)
    rngs = row_generators(options.seed, len(phones))
    codes = np.zeros((len(phones), q, int(batch.lengths.max())), dtype=np.int64)
    for level in range(q):
        if level == 0 and fill_first_level is not None:
            fill_first_level(graphs, batch, codes, options, rngs)
        else:
            fill_level(graphs, batch, codes, level, steps[level], options, rngs)
    return [codes[i, :, :n] for i, n in enumerate(batch.lengths.tolist())]
