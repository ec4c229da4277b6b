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
from typing import Protocol

import numpy as np

from narvox.tts.decoding import GenerateOptions, check_inputs, pad, phone_durations, regulate
from narvox.tts.sampling import guide, row_generators, sample

DEFAULT_STEPS = (16, 4, 2)  # passes per level, then 1 for every level after these


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


def fill_level(graphs: MaskedGraphs, text, text_lens, prompt, prompt_lens, codes: np.ndarray, lengths: np.ndarray,
               frame_cond, level: int, n_steps: int, options: GenerateOptions, rngs) -> None:
    """Mask-predict codebook `level` of codes [B, Q, T] in place."""
    b, _, t = codes.shape
    sampling = options.sampling
    guided = sampling.cfg_scale != 1
    real = np.arange(t)[None] < lengths[:, None]
    known = ~real  # padding counts as known: it is never predicted
    levels = np.full(b * (1 + guided), level, dtype=np.int64)
    twice = lambda x: x if not guided or x is None else np.concatenate([x, x])
    no_prompt = np.concatenate([prompt_lens, np.zeros_like(prompt_lens)]) if guided else prompt_lens
    for step in range(n_steps):
        logits = graphs.levels(twice(text), twice(text_lens), twice(prompt), no_prompt, twice(codes), twice(lengths),
                               twice(frame_cond), levels, twice(known)).astype(np.float64)
        if guided:
            logits = guide(logits[:b], logits[b:], sampling.cfg_scale)
        temperature = sampling.temperature * (1 - step / n_steps)
        options_now = dataclasses.replace(sampling, temperature=temperature, repetition_ratio=0)
        rows, frames = np.nonzero(~known)
        drawn = sample(logits[rows, frames], options_now, [rngs[r] for r in rows])
        scaled = logits[rows, frames] / max(temperature, 1e-6)
        scaled -= scaled.max(axis=1, keepdims=True)
        confidence = np.exp(scaled[np.arange(len(rows)), drawn]) / np.exp(scaled).sum(axis=1)
        codes[rows, level, frames] = drawn
        score = np.full((b, t), np.inf)
        score[rows, frames] = confidence
        # how many stay masked after this pass: the cosine schedule, 0 after the last one
        remasked = np.floor(lengths * math.cos(math.pi / 2 * (step + 1) / n_steps)).astype(np.int64)
        order = np.argsort(score, axis=1, kind="stable")  # least confident first
        again = np.arange(t)[None] < remasked[:, None]
        known = np.ones((b, t), dtype=bool)
        np.put_along_axis(known, order, ~again, axis=1)
        known |= ~real


def generate(graphs: MaskedGraphs, phones: list[np.ndarray], prompts: list[np.ndarray],
             prompt_phones: list[np.ndarray] | None, options: GenerateOptions) -> list[np.ndarray]:
    """What TtsBackend.generate promises: per item codes [Q, F]."""
    q, b = graphs.n_codebooks, len(phones)
    check_inputs(q, phones, prompts, prompt_phones, options)
    steps = steps_per_level(q, options.steps)
    prompt, prompt_lens = pad([p[:q] for p in prompts])
    rngs = row_generators(options.seed, b)
    if graphs.conditioning == "aligned":
        ph, lens = pad(phones)
        states, log_d = graphs.encode(ph, lens, prompt, prompt_lens)
        durations = phone_durations(log_d, lens, options)
        lengths = durations.sum(1)
        cond, text, text_lens = regulate(states, durations, int(lengths.max())), None, np.zeros(b, dtype=np.int64)
    else:
        if prompt_phones is None:
            raise ValueError("the prefix conditioning needs the prompt's phones")
        lengths = (np.asarray(options.durations, dtype=np.int64) if options.durations is not None
                   else target_frames(prompt_lens, prompt_phones, phones))
        text, text_lens = pad([np.concatenate([pp, p]) for pp, p in zip(prompt_phones, phones)])
        text, _ = graphs.encode(text, text_lens, prompt, prompt_lens)
        cond = None
    codes = np.zeros((b, q, int(lengths.max())), dtype=np.int64)
    for level in range(q):
        fill_level(graphs, text, text_lens, prompt, prompt_lens, codes, lengths, cond, level, steps[level],
                   options, rngs)
    return [codes[i, :, :int(lengths[i])] for i in range(b)]
