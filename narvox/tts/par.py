"""The pseudo-autoregressive backend (PALLE, arXiv 2504.10352): the masked backend's bidirectional
model over all Q codebook levels, trained to extend a known prefix of codebook 1 by a span, and to
refine codebook 1's least sure codes; narvox.tts.pseudo_ar generates with it.

Codebook-1 items are trained two ways, in one model (PALLE trains two; `par_share` sets the mix):
- pseudo-AR: a start s ~ U{0 .. T - k} is drawn, frames before s are given, every frame from s
  on is masked, and the loss is on the k = par_span * T frames after s only (the span a decoding
  step keeps; the share drawn from [par_span, par_span_max] when that is set). PALLE draws s from
  0.3 T, its prompt being the target's own start; here the prompt has slots of its own, so the
  target is learned from its first frame. With par_lookahead (aligned conditioning) the item
  ends par_lookahead frames after the span, as a decoding step that reads no further sees it;
- refinement: frames masked independently with probability refine_mask, loss on them.
Codebooks 2..Q are trained as in the masked backend (one level drawn per item, a random share
of its frames masked, the levels below given).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from narvox.tts import pseudo_ar
from narvox.tts.masked import MaskedTTS, draw_masks


def prefix_masks(lengths: Tensor, width: int, span: float, span_max: float | None = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """PALLE's stage-1 masks [B, width]: (known: the frames before a random start s, scored: the
    k frames from s on, k = span_frames(T, share) as in decoding, the share drawn from
    [span, span_max]) and where each span ends, s + k [B]."""
    share = span if span_max is None else span + (span_max - span) * torch.rand(len(lengths)).numpy()
    k = torch.from_numpy(pseudo_ar.span_frames(lengths.numpy(), share))
    start = (torch.rand(len(lengths)) * (lengths - k + 1).clamp(min=1)).long()
    frame = torch.arange(width)[None]
    return frame < start[:, None], (frame >= start[:, None]) & (frame < (start + k)[:, None]), start + k


class PseudoArTTS(MaskedTTS):
    def loss(self, batch: dict) -> dict[str, Tensor]:
        c = self.config
        codes, code_lens = batch["codes"][:, :c.n_codebooks], batch["code_lens"]
        prompt, prompt_lens = batch["prompt"][:, :c.n_codebooks], batch["prompt_lens"]
        b, width = codes.size(0), codes.size(2)
        visible = torch.rand(b) >= c.cond_drop
        (text,), text_lens, (cond,), out = self.text_to_frames.for_training([self.levels], batch, codes, prompt,
                                                                            visible)
        level = torch.multinomial(torch.arange(c.n_codebooks, 0, -1, dtype=torch.float), b, replacement=True)
        ratio = torch.sin(math.pi / 2 * torch.rand(b)).clamp(min=c.min_mask_ratio)
        known = ~draw_masks(code_lens, width, ratio, c.mask_span)  # levels 2..Q: the masked objective
        first = level == 0
        par = first & (torch.rand(b) < c.par_share)
        refining = (first & ~par)[:, None]
        known = torch.where(refining, ~draw_masks(code_lens, width, torch.full((b,), c.refine_mask), 1), known)
        par_known, par_scored, span_end = prefix_masks(code_lens, width, c.par_span, c.par_span_max)
        known = torch.where(par[:, None], par_known, known)
        scored = torch.where(par[:, None], par_scored, ~known)
        seen = code_lens
        if c.par_lookahead is not None and c.conditioning == "aligned":
            seen = torch.where(par, torch.minimum(code_lens, span_end + c.par_lookahead), code_lens)
        kept_prompt = torch.where(torch.rand(b) >= c.prompt_drop, prompt_lens, torch.zeros_like(prompt_lens))
        out["ce_levels"], out["acc_levels"] = self.levels.loss(text, text_lens, prompt, kept_prompt, codes, seen,
                                                               cond, level, known, visible, scored)
        return out

    loop = staticmethod(pseudo_ar.generate)
    stream_loop = staticmethod(pseudo_ar.stream)
