"""Decoding searches shared by the PyTorch models and narvox.runtime: numpy only, no torch.

- CTC: greedy best path and prefix beam search over log-probs.
- Attention decoder: batched beam search over any `step` function (a torch decoder or an ONNX
  session), with the KV cache carried as arrays whose axis 1 is the hypothesis; and rescoring of
  the CTC n-best by the decoder, teacher-forced through the same `step`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

BLANK = 0


def ctc_greedy(log_probs: np.ndarray, lengths: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Best path of [B, T, V] log-probs: (token ids, frame where each token starts) per utterance."""
    best = log_probs.argmax(-1)
    keep = best != BLANK
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    out = []
    for b, n in enumerate(lengths):
        frames = np.nonzero(keep[b, :int(n)])[0]
        out.append((best[b, frames].tolist(), frames.tolist()))
    return out


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def ctc_prefix_beam_search(log_probs: np.ndarray, beam: int = 5, prune: float = -12.0) -> list[int]:
    """The best prefix of `ctc_prefix_beams`."""
    return ctc_prefix_beams(log_probs, beam, prune)[0][0]


def ctc_prefix_beams(log_probs: np.ndarray, beam: int = 5,
                     prune: float = -12.0) -> list[tuple[list[int], float]]:
    """CTC prefix beam search over one utterance's log-probs [T, V]: the final beams as
    (token ids, log-probability), best first.

    Frames where blank is certain are folded in without expanding prefixes: they add the same
    blank probability to every prefix and cannot change the ranking.
    """
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (p_blank, p_nonblank)
    for frame in log_probs:
        if frame[BLANK] > -1e-4:
            beams = {p: (_logaddexp(pb, pnb) + float(frame[BLANK]), -math.inf) for p, (pb, pnb) in beams.items()}
            continue
        candidates = np.nonzero(frame > prune)[0]
        nxt: dict[tuple, list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for tok in candidates.tolist():
                p = float(frame[tok])
                if tok == BLANK:
                    nxt[prefix][0] = _logaddexp(nxt[prefix][0], total + p)
                elif prefix and prefix[-1] == tok:
                    nxt[prefix][1] = _logaddexp(nxt[prefix][1], pnb + p)      # repeat collapses
                    ext = prefix + (tok,)
                    nxt[ext][1] = _logaddexp(nxt[ext][1], pb + p)             # blank-separated repeat
                else:
                    ext = prefix + (tok,)
                    nxt[ext][1] = _logaddexp(nxt[ext][1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: -_logaddexp(*kv[1]))[:beam]
        beams = {p: (v[0], v[1]) for p, v in ranked}
    return sorted(((list(p), _logaddexp(pb, pnb)) for p, (pb, pnb) in beams.items()), key=lambda h: -h[1])


# the attention decoder's length limit: at most this many tokens per encoder frame
MAX_TOKENS_PER_FRAME = 0.6

StepFn = Callable[[np.ndarray, int, tuple], tuple[np.ndarray, tuple]]


def attention_beam_search(step: StepFn, cache: tuple, batch: int, beam: int, max_lens: Sequence[int],
                          sos: int, eos: int) -> list[list[int]]:
    """Batched beam search: every utterance's `beam` hypotheses advance together, one step call
    per output position.

    `step(tokens [B*beam, 1], position, cache) -> (log-probs [B*beam, V], cache)`; every cache
    array has the hypothesis on axis 1 so it can be reordered when beams are re-ranked. Only the
    cache the step returns is reordered: whatever else the step reads (the encoder's cross-
    attention keys and values) is the same for all beams of an utterance and stays in place.
    Scores are summed log-probs; the final choice is length-normalised. Utterance b stops after
    `max_lens[b]` tokens, however long its batch-mates run.
    """
    limit = np.repeat(np.asarray(max_lens), beam)
    scores = np.full((batch, beam), -np.inf, dtype=np.float32)
    scores[:, 0] = 0.0
    tokens = np.full((batch * beam, 1), sos, dtype=np.int64)
    history = np.zeros((batch * beam, 0), dtype=np.int64)
    finished = np.zeros(batch * beam, dtype=bool)
    offsets = (np.arange(batch) * beam)[:, None]
    for position in range(int(limit.max())):
        finished |= position >= limit
        logp, cache = step(tokens, position, cache)
        # a finished hypothesis can only extend by </s>, at no cost
        logp = np.where(finished[:, None], -np.inf, logp).astype(np.float32)
        logp[finished, eos] = 0.0
        vocab = logp.shape[1]
        total = (scores.reshape(-1, 1) + logp).reshape(batch, -1)
        flat = np.argpartition(-total, beam - 1, axis=1)[:, :beam] if beam < total.shape[1] else \
            np.tile(np.arange(total.shape[1]), (batch, 1))
        scores = np.take_along_axis(total, flat, 1)
        source = (flat // vocab + offsets).reshape(-1)
        tokens = (flat % vocab).reshape(-1, 1)
        cache = tuple(c[:, source] for c in cache)
        history = np.concatenate([history[source], tokens], 1)
        finished = finished[source] | (tokens[:, 0] == eos)
        if finished.all():
            break
    lengths = ((history != eos).sum(1) + 1).reshape(batch, beam)
    best = (scores / lengths).argmax(1)
    out = []
    for b in range(batch):
        seq = history[b * beam + best[b]].tolist()
        out.append(seq[:seq.index(eos)] if eos in seq else seq)
    return out


# attention rescoring's weight of the CTC score beside the decoder's (WeNet's default)
RESCORE_CTC_WEIGHT = 0.5


def attention_rescore(step: StepFn, cache: tuple, nbest: list[list[tuple[list[int], float]]],
                      sos: int, eos: int, ctc_weight: float = RESCORE_CTC_WEIGHT) -> list[list[int]]:
    """Attention rescoring (WeNet's `attention_rescoring`): each utterance's CTC n-best
    (`ctc_prefix_beams`) scored by the decoder in one teacher-forced pass, the best of
    decoder log-prob (</s> included) + `ctc_weight` x CTC log-prob chosen per utterance.

    Every hypothesis of every utterance is a row of the same `step` calls, `step` as
    `attention_beam_search` takes it, with its rows in `nbest` order (the caller repeats each
    utterance's cross-attention inputs by its number of hypotheses); rows shorter than the
    longest read </s> past their end, whose scores are not counted.
    """
    hyps = [ids for utt in nbest for ids, _ in utt]
    lengths = np.array([len(h) for h in hyps])
    longest = int(lengths.max())
    tokens = np.full((len(hyps), longest + 2), eos, dtype=np.int64)
    tokens[:, 0] = sos
    for i, h in enumerate(hyps):
        tokens[i, 1:len(h) + 1] = h
    rows = np.arange(len(hyps))
    scores = np.zeros(len(hyps))
    for position in range(longest + 1):
        logp, cache = step(tokens[:, position:position + 1], position, cache)
        scores += np.where(position <= lengths, logp[rows, tokens[:, position + 1]], 0.0)
    out, row = [], 0
    for utt in nbest:
        total = [scores[row + i] + ctc_weight * ctc for i, (_, ctc) in enumerate(utt)]
        out.append(utt[int(np.argmax(total))][0])
        row += len(utt)
    return out


def ctc_align_starts(log_probs: np.ndarray, tokens: Sequence[int]) -> list[int]:
    """First frame of each token on the CTC forced-alignment (Viterbi) path of [T, V] log-probs.

    States are the usual blank-interleaved sequence (blank, t1, blank, t2, ..., blank); the loop
    runs over frames with all states updated at once.
    """
    tokens = list(tokens)
    t_max, n = log_probs.shape[0], len(tokens)
    if n == 0:
        return []
    if n > t_max:
        return [0] * n  # cannot align more tokens than frames; report the start
    states = np.full(2 * n + 1, BLANK, dtype=np.int64)
    states[1::2] = tokens
    s = len(states)
    # a token state may skip the blank before it unless it repeats the previous token
    can_skip = np.zeros(s, dtype=bool)
    can_skip[3::2] = states[3::2] != states[1:-2:2]
    score = np.full(s, -np.inf)
    score[:2] = log_probs[0, states[:2]]
    back = np.zeros((t_max, s), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, t_max):
        prev1 = np.concatenate([[-np.inf], score[:-1]])
        prev2 = np.where(can_skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        stacked = np.stack([score, prev1, prev2])
        back[t] = stacked.argmax(0)
        score = stacked.max(0) + log_probs[t, states]
    state = s - 1 if s == 1 or score[s - 1] >= score[s - 2] else s - 2
    path = np.empty(t_max, dtype=np.int64)
    for t in range(t_max - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    starts = [0] * n
    for t in range(t_max - 1, -1, -1):  # earliest frame of each token state
        if path[t] % 2 == 1:
            starts[path[t] // 2] = t
    return starts


def cif_token_starts(alphas: np.ndarray, fired: np.ndarray, n: int, onset_alpha: float = 0.3) -> list[int]:
    """Start frame of each of the `n` tokens a Paraformer emitted, from one utterance's CIF
    weights `alphas` [T] and its fire mask `fired` [T] (1 where a counted token fired).

    A token starts one frame after the previous one fired, but never before the speech onset,
    the first frame whose alpha reaches `onset_alpha`: CIF integrates the small alphas of leading
    silence into the first tokens, which would otherwise always start at 0.
    """
    fire = np.nonzero(fired > 1.0 - 1e-4)[0]
    starts = [0] + [int(f) + 1 for f in fire[:max(n - 1, 0)]]
    starts += starts[-1:] * (n - len(starts))  # two tokens fired on one frame
    loud = np.nonzero(alphas >= onset_alpha)[0]
    onset = int(loud[0]) if len(loud) else 0
    return [max(s, onset) for s in starts[:n]]
