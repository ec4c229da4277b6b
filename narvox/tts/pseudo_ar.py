"""How the pseudo-autoregressive backend (PALLE) generates, torch-free.

Codebook 1 is made left to right like AR, but a whole span per step: each pass of the
bidirectional `levels` graph predicts every unfinished frame and keeps only the leftmost `span`
of the target (10 % by default, so 10 passes whatever the length). Then a few refinement passes
mask the least confident of those codes again and predict them in parallel, each code refined
at most once (PALLE's stage 2). Codebooks 2..Q follow as in the masked backend, one mask-predict
level at a time (narvox.tts.mask_predict), since PALLE itself speaks a single token stream.

It runs against the same graphs as the masked backend (MaskedGraphs): only the order in which
codes are filled in differs. PALLE refines with a second model trained by random masking; here
the pseudo-AR model is trained to refine too (one joint model), and `generate(..., refiner=)`
hands refinement to another model instead, a masked backend's on the same codec and
conditioning (two separate models, PALLE's choice), so that both can be measured.

A model trained with a look-ahead (par_lookahead, aligned conditioning; its graphs' `lookahead`,
or GenerateOptions.lookahead) is run on a window per step: the frames made so far, the span and
`lookahead` frames after it; the frames past the window are what a later step will see.
Refinement and levels 2..Q read the whole target.

`steps` counts the mask-predict passes of levels 2..Q. Streaming (`stream`) finishes every level
of a span before the next span: after codebook 1's pass keeps the span, one greedy pass per level
above (whatever `steps`) predicts that level for the span and, as drafts the next levels read,
for every frame after it. A span is final once made, so its audio can play;
refinement is left out, since it would revise audio already played.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from narvox.tts import mask_predict
from narvox.tts.decoding import GenerateOptions
from narvox.tts.mask_predict import Conditioned, MaskedGraphs, condition, predict
from narvox.tts.sampling import row_generators

REFINE_SHARE = 0.05  # of each target's frames masked again per refinement pass (7 passes: a third)


def span_frames(lengths: np.ndarray, span: float) -> np.ndarray:
    """Frames per step for targets of `lengths` frames: ceil(span * T), at least 1 (so 1/span
    steps whatever the length); training scores spans of the same size. Rounded to 6 places
    first, so that 0.07 * 100 is 7 and not 8."""
    return np.maximum(1, np.ceil(np.round(span * np.asarray(lengths), 6))).astype(np.int64)


def lookahead_of(graphs: MaskedGraphs, options: GenerateOptions) -> int | None:
    return options.lookahead if options.lookahead is not None else getattr(graphs, "lookahead", None)


def window(batch: Conditioned, made: np.ndarray, span: np.ndarray, lookahead: int | None) -> Conditioned:
    """What a step reads: each item's frames up to `lookahead` past its next span (`made` frames
    made so far), the whole target when lookahead is None or the conditioning is prefix (whose
    frames know their text only through the target's length). A finished item keeps one frame,
    so that it does not widen its batch-mates' window."""
    if lookahead is None or batch.frame_cond is None:
        return batch
    ends = np.where(made >= batch.lengths, 1, np.minimum(batch.lengths, made + span + lookahead))
    return dataclasses.replace(batch, frame_cond=batch.frame_cond[:, :int(ends.max())], lengths=ends,
                               phone_frames=None)


def spans(graphs: MaskedGraphs, batch: Conditioned, codes: np.ndarray, options: GenerateOptions,
                rngs) -> np.ndarray:
    """Codebook 1 of codes [B, Q, T] in place, a span per pass; returns each code's probability
    when it was drawn [B, T] (what refinement ranks)."""
    b, _, t = codes.shape
    real = batch.real
    span = span_frames(batch.lengths, options.span)
    known = ~real
    made = np.zeros(b, dtype=np.int64)
    confidence = np.ones((b, t))
    while not known.all():
        seen = window(batch, made, span, lookahead_of(graphs, options))
        width = int(seen.lengths.max())
        rows, frames, drawn, p = predict(graphs, seen, codes[:, :, :width], known[:, :width] | ~seen.real, 0,
                                         options.sampling, options.sampling.temperature, rngs)
        # np.nonzero lists each row's unfinished frames left to right, rows in order
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        keep = rank < span[rows]
        rows, frames = rows[keep], frames[keep]
        codes[rows, 0, frames], confidence[rows, frames] = drawn[keep], p[keep]
        known[rows, frames] = True
        made = np.minimum(made + span, batch.lengths)
    return confidence


def refine(graphs: MaskedGraphs, batch: Conditioned, codes: np.ndarray, confidence: np.ndarray,
           options: GenerateOptions, rngs) -> None:
    """PALLE's stage 2 on codebook 1: per pass, the least confident REFINE_SHARE of each target's
    codes not yet refined are masked and predicted again together; temperature annealed to 0."""
    b, _, t = codes.shape
    refined = ~batch.real  # padding is never touched
    per_pass = np.maximum(1, np.floor(REFINE_SHARE * batch.lengths)).astype(np.int64)
    for step in range(options.refine_steps):
        count = np.minimum(per_pass, (~refined).sum(1))
        if not count.any():
            break
        order = np.argsort(np.where(refined, np.inf, confidence), axis=1, kind="stable")
        masked = np.zeros((b, t), dtype=bool)
        np.put_along_axis(masked, order, np.arange(t)[None] < count[:, None], axis=1)
        temperature = options.sampling.temperature * (1 - (step + 1) / options.refine_steps)
        rows, frames, drawn, _ = predict(graphs, batch, codes, ~masked, 0, options.sampling, temperature, rngs)
        codes[rows, 0, frames] = drawn
        refined |= masked


def generate(graphs: MaskedGraphs, phones: list[np.ndarray], prompts: list[np.ndarray],
             prompt_phones: list[np.ndarray] | None, options: GenerateOptions,
             refiner: MaskedGraphs | None = None) -> list[np.ndarray]:
    """What TtsBackend.generate promises: per item codes [Q, F]. Codebook 1 span by span, then
    refined by `graphs` or by the `refiner` model, conditioned on the same frames per phone."""
    if refiner is not None and (refiner.conditioning, refiner.n_codebooks) != (graphs.conditioning, graphs.n_codebooks):
        raise ValueError(f"the refiner ({refiner.conditioning}, {refiner.n_codebooks} codebooks) does not match the "
                         f"pseudo-AR model ({graphs.conditioning}, {graphs.n_codebooks} codebooks)")

    def fill_first_level(graphs, batch, codes, options, rngs):
        confidence = spans(graphs, batch, codes, options, rngs)
        if refiner is None:
            refine(graphs, batch, codes, confidence, options, rngs)
        else:
            refine(refiner, condition(refiner, phones, prompts, prompt_phones, options, like=batch), codes,
                   confidence, options, rngs)
    return mask_predict.generate(graphs, phones, prompts, prompt_phones, options, fill_first_level)


def stream(graphs: MaskedGraphs, phones: list[np.ndarray], prompts: list[np.ndarray],
           prompt_phones: list[np.ndarray] | None, options: GenerateOptions
           ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (codes [B, Q, T], final [B]) after every span: the first final[b] frames of row b
    are done and never change; the last yield has every row complete. `codes` is the working
    array: copy what must outlive the next step."""
    batch = condition(graphs, phones, prompts, prompt_phones, options)
    b, q = len(phones), graphs.n_codebooks
    rngs = row_generators(options.seed, b)
    t = int(batch.lengths.max())
    codes = np.zeros((b, q, t), dtype=np.int64)
    span = span_frames(batch.lengths, options.span)
    final = np.zeros(b, dtype=np.int64)
    frame = np.arange(t)[None]
    while (final < batch.lengths).any():
        seen = window(batch, final, span, lookahead_of(graphs, options))
        width = int(seen.lengths.max())
        done = ((frame < final[:, None]) | ~batch.real)[:, :width] | ~seen.real
        now = np.minimum(final + span, batch.lengths)
        for level in range(q):  # codebook 1 for the span (drafts after it), then each level above
            temperature = options.sampling.temperature if level == 0 else 0.0  # levels above: greedy (VALL-E)
            rows, frames, drawn, _ = predict(graphs, seen, codes[:, :, :width], done, level, options.sampling,
                                             temperature, rngs)
            codes[rows, level, frames] = drawn
        final = now
        yield codes, final
