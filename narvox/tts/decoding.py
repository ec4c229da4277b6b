"""How the VALL-E backend generates, torch-free: durations and the length regulator of the aligned
conditioning, the codebook-1 loop with its KV cache, end token and classifier-free guidance,
and the greedy passes over codebooks 2..Q.

The loops run on numpy against `ValleGraphs`, the three computations a model offers: its PyTorch
module (narvox.tts.ar) and its ONNX graphs (narvox.runtime.tts) both do, so both generate
through the same code, and a seeded synthesis gives the same codes in either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from narvox.tts.sampling import SamplingOptions, guide, row_generators, sample


@dataclass(frozen=True)
class GenerateOptions:
    """How to generate. `durations`: per item, the target's length in codec frames (None: the
    duration predictor's, or the end token's under the prefix conditioning); `speed` divides
    predicted durations. `max_frames_per_phone` caps a prefix-conditioned AR that never emits
    its end token (speech here runs at about 4 frames per phone). `steps`: the masked backend's
    mask-predict passes per codebook level, coarse to fine (the pseudo-AR backend's for levels 2..Q).
    `span`: the share of the target the pseudo-AR backend fixes per step (0.1: 10 steps);
    `refine_steps`: its refinement passes over codebook 1 afterwards; `lookahead`: the frames past
    the span a pseudo-AR step reads (None: the model's own, its graphs' `lookahead`)."""
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    seed: int | None = None
    durations: tuple[int, ...] | None = None
    speed: float = 1.0
    max_frames_per_phone: float = 8.0
    steps: tuple[int, ...] | None = None  # masked backend: passes per codebook level (None: its default)
    span: float = 0.1
    refine_steps: int = 7
    lookahead: int | None = None

    def __post_init__(self):
        if self.speed <= 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        if self.steps is not None and (not self.steps or any(s < 1 for s in self.steps)):
            raise ValueError(f"steps must be >= 1 per codebook level, got {self.steps}")
        if not 0 < self.span <= 1:
            raise ValueError(f"span must be in (0, 1], got {self.span}")
        if self.refine_steps < 0:
            raise ValueError(f"refine_steps must be >= 0, got {self.refine_steps}")
        if self.lookahead is not None and self.lookahead < 0:
            raise ValueError(f"lookahead must be >= 0, got {self.lookahead}")


class ValleGraphs(Protocol):
    conditioning: str   # "prefix" | "aligned"
    n_codebooks: int
    codebook_size: int  # the end token's id; the start token is the next one
    d_model: int

    def encode(self, phones: np.ndarray, phone_lens: np.ndarray, prompt: np.ndarray,
               prompt_lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Phone states of the codebook-1 stage and of the residual stage [B, L, D], and the
        predicted log(1 + frames) of every phone [B, L] (aligned; zeros under prefix)."""

    def lm(self, tokens: np.ndarray, text: np.ndarray, frame_cond: np.ndarray, is_text: np.ndarray,
           is_prompt: np.ndarray, positions: np.ndarray, key_valid: np.ndarray, key_is_text: np.ndarray,
           cache: Any) -> tuple[np.ndarray, Any]:
        """The codebook-1 stage over n new slots (narvox.tts.ar.FirstCodebookLM.run): logits of
        codebook 1 and the end token [B, n, V + 1], and the cache grown by n (None: empty)."""

    def residual(self, text: np.ndarray | None, text_lens: np.ndarray, prompt: np.ndarray, prompt_lens: np.ndarray,
                 target: np.ndarray, target_lens: np.ndarray, frame_cond: np.ndarray | None,
                 level: np.ndarray) -> np.ndarray:
        """Logits [B, T, V] of codebook level[b] (1..Q-1) of every target frame from the levels below."""


def pad(seqs: list[np.ndarray], value: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad arrays along their last axis into [B, ..., T]; returns it and the lengths."""
    lens = np.array([s.shape[-1] for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), *seqs[0].shape[:-1], max(int(lens.max()), 1)), value, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, ..., :s.shape[-1]] = s
    return out, lens


def frames_per_phone(log_durations: np.ndarray, lens: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """Predicted log(1 + frames) -> whole frames per phone, at least one per real phone (a phone
    given no frame could not be heard), divided by `speed`; 0 on padding."""
    d = np.maximum(np.round(np.maximum(np.expm1(log_durations), 0) / speed), 1).astype(np.int64)
    return np.where(np.arange(d.shape[1])[None] < lens[:, None], d, 0)


def fit_durations(durations: np.ndarray, totals: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Scale frames per phone [B, L] to sum to totals [B], keeping their proportions (rounded on
    the cumulative sum, so totals are exact) and at least one frame per phone."""
    if (totals < lens).any():
        i = int(np.argmax(totals < lens))
        raise ValueError(f"a duration of {int(totals[i])} frames is shorter than the text's {int(lens[i])} phones")
    real = np.arange(durations.shape[1])[None] < lens[:, None]
    extra = np.maximum(durations - 1, 0) * real
    extra = np.where(extra.sum(1, keepdims=True) > 0, extra, real).astype(np.float64)  # all at 1: spread evenly
    ends = np.round(np.cumsum(extra, 1) / extra.sum(1, keepdims=True) * (totals - lens)[:, None]).astype(np.int64)
    added = np.diff(ends, axis=1, prepend=0)
    return (1 + added) * real


def phone_durations(log_durations: np.ndarray, lens: np.ndarray, options: GenerateOptions) -> np.ndarray:
    """Frames per phone [B, L] of the aligned conditioning: the predictor's, divided by the
    speed, or scaled to the lengths the options impose."""
    durations = frames_per_phone(log_durations, lens, options.speed)
    if options.durations is not None:
        durations = fit_durations(durations, np.asarray(options.durations, dtype=np.int64), lens)
    return durations


def check_inputs(n_codebooks: int, phones: list, prompts: list, prompt_phones: list | None, options) -> None:
    """What every backend's generate refuses, before any work."""
    b = len(phones)
    if len(prompts) != b or (prompt_phones is not None and len(prompt_phones) != b):
        raise ValueError("give one prompt (and prompt text) per item")
    for i, p in enumerate(prompts):
        if p.ndim != 2 or p.shape[0] < n_codebooks or p.shape[1] == 0:
            raise ValueError(f"item {i}: prompt codes must be [>= {n_codebooks} codebooks, frames > 0], got {p.shape}")
    if options.durations is not None and len(options.durations) != b:
        raise ValueError("give one duration per item")


def regulate(states: np.ndarray, durations: np.ndarray, n_frames: int) -> np.ndarray:
    """Phone states [B, L, D] repeated by durations [B, L] into frames [B, n_frames, D]."""
    ends = np.cumsum(durations, axis=1)
    index = np.minimum((np.arange(n_frames)[None, :, None] >= ends[:, None, :]).sum(2), durations.shape[1] - 1)
    return np.take_along_axis(states, index[:, :, None], axis=1)


def prefill_slots(text_lens: np.ndarray, prompt_lens: np.ndarray, n_text: int, n_prompt: int,
                  text_visible: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The [text | prompt] slots (each segment padded to its longest) as the codebook-1 stage's
    run takes them, [B, n_text + n_prompt]: is_text, positions, key_valid (what
    narvox.tts.core.Layout.first_stage_slots gives in training)."""
    slot = np.arange(n_text + n_prompt)[None, :].repeat(len(prompt_lens), 0)
    is_text = slot < n_text
    key_valid = np.where(is_text, (slot < text_lens[:, None]) & text_visible[:, None],
                         slot - n_text < prompt_lens[:, None])
    return is_text, np.where(is_text, slot, slot - n_text), key_valid


def decode_first(graphs: ValleGraphs, text, text_lens, prompt, prompt_lens, frame_cond, max_frames: np.ndarray,
                 can_end: bool, options, rngs) -> tuple[np.ndarray, np.ndarray]:
    """Codebook 1, frame by frame: codes [B, T] and lengths [B]. A row stops at its end token
    (`can_end`) or at max_frames[b]. Guidance adds the same rows without their text (hidden from
    every attention, or, aligned, zero phone states) to the batch."""
    sampling = options.sampling
    b, guided = len(prompt), sampling.cfg_scale != 1
    eos = graphs.codebook_size
    if guided:
        twice = lambda x: None if x is None else np.concatenate([x, x])
        text, text_lens, prompt, prompt_lens = twice(text), twice(text_lens), twice(prompt), twice(prompt_lens)
        if frame_cond is not None:
            frame_cond = np.concatenate([frame_cond, np.zeros_like(frame_cond)])
    rows, d = len(prompt), graphs.d_model
    n_text, n_prompt = (0 if text is None else text.shape[1]), prompt.shape[1]
    is_text, positions, key_valid = prefill_slots(text_lens, prompt_lens, n_text, n_prompt, np.arange(rows) < b)
    is_prompt = ~is_text
    tokens = np.concatenate([np.zeros((rows, n_text), dtype=np.int64), prompt], axis=1)
    text_in = np.zeros((rows, n_text + n_prompt, d), dtype=np.float32)
    if text is not None:
        text_in[:, :n_text] = text
    _, cache = graphs.lm(tokens, text_in, np.zeros_like(text_in), is_text, is_prompt, positions, key_valid, is_text,
                         None)
    key_is_text = is_text
    no_text = np.zeros((rows, 1, d), dtype=np.float32)
    no = np.zeros((rows, 1), dtype=bool)
    steps = int(max_frames.max())
    out = np.zeros((b, steps), dtype=np.int64)
    lengths = max_frames.astype(np.int64).copy()
    done = np.zeros(b, dtype=bool)
    prev = np.full((rows, 1), eos + 1, dtype=np.int64)  # the start token
    for t in range(steps):
        key_valid = np.concatenate([key_valid, ~no], axis=1)
        key_is_text = np.concatenate([key_is_text, no], axis=1)
        cond = no_text if frame_cond is None else frame_cond[:, t:t + 1]
        logits, cache = graphs.lm(prev, no_text, cond, no, no, (prompt_lens + t)[:, None], key_valid, key_is_text,
                                  cache)
        logits = logits[:, 0].astype(np.float64)
        if not can_end:
            logits[:, eos] = -np.inf
        if guided:
            logits = guide(logits[:b], logits[b:], sampling.cfg_scale)
        tokens = sample(logits, sampling, rngs, out[:, :t])
        out[:, t] = tokens
        ended = (tokens == eos) & ~done
        lengths[ended] = t
        done |= ended | (t + 1 >= max_frames)
        if done.all():
            break
        prev = np.concatenate([tokens, tokens] if guided else [tokens])[:, None]
    return out, lengths


def decode_rest(graphs: ValleGraphs, text, text_lens, prompt, prompt_lens, first: np.ndarray, lengths: np.ndarray,
                frame_cond) -> np.ndarray:
    """Levels 2..Q of codebook-1 codes first [B, T], one greedy pass each -> codes [B, Q, T]."""
    codes = np.zeros((len(first), graphs.n_codebooks, first.shape[1]), dtype=np.int64)
    codes[:, 0] = np.where(first < graphs.codebook_size, first, 0)  # past a row's end: its end token
    for q in range(1, graphs.n_codebooks):
        level = np.full(len(first), q, dtype=np.int64)
        codes[:, q] = graphs.residual(text, text_lens, prompt, prompt_lens, codes, lengths, frame_cond, level).argmax(-1)
    return codes


def generate(graphs: ValleGraphs, phones: list[np.ndarray], prompts: list[np.ndarray],
             prompt_phones: list[np.ndarray] | None, options) -> list[np.ndarray]:
    """What TtsBackend.generate promises, for any ValleGraphs: per item codes [Q, F]."""
    q, b = graphs.n_codebooks, len(phones)
    check_inputs(q, phones, prompts, prompt_phones, options)
    prompt, prompt_lens = pad([p[:q] for p in prompts])
    rngs = row_generators(options.seed, b)
    if graphs.conditioning == "aligned":
        ph, lens = pad(phones)
        first_states, rest_states, log_d = graphs.encode(ph, lens, prompt, prompt_lens)
        durations = phone_durations(log_d, lens, options)
        n_frames = durations.sum(1)
        width = int(n_frames.max())
        conds = [regulate(s, durations, width) for s in (first_states, rest_states)]
        texts, text_lens = [None, None], np.zeros(b, dtype=np.int64)
        first, n_frames = decode_first(graphs, None, text_lens, prompt[:, 0], prompt_lens, conds[0], n_frames,
                                       False, options, rngs)
    else:
        if prompt_phones is None:
            raise ValueError("the prefix conditioning needs the prompt's phones")
        lens = np.array([len(p) for p in phones], dtype=np.int64)
        text, text_lens = pad([np.concatenate([pp, p]) for pp, p in zip(prompt_phones, phones)])
        first_states, rest_states, _ = graphs.encode(text, text_lens, prompt, prompt_lens)
        texts, conds = [first_states, rest_states], [None, None]
        fixed = options.durations is not None
        cap = (np.asarray(options.durations, dtype=np.int64) if fixed
               else np.ceil(lens * options.max_frames_per_phone).astype(np.int64))
        first, n_frames = decode_first(graphs, texts[0], text_lens, prompt[:, 0], prompt_lens, None, cap,
                                       not fixed, options, rngs)
    width = max(int(n_frames.max()), 1)
    first = first[:, :width]
    if q == 1:
        codes = first[:, None]
    else:
        cond = None if conds[1] is None else conds[1][:, :width]
        codes = decode_rest(graphs, texts[1], text_lens, prompt, prompt_lens, first, n_frames, cond)
    return [codes[i, :, :int(n_frames[i])] for i in range(b)]
