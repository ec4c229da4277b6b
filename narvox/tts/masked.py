"""The masked non-autoregressive backend (MaskGCT's S2A, MAGNeT): one bidirectional transformer
over all Q codebook levels that fills each level in over a few passes (narvox.tts.mask_predict)
instead of one frame per step.

Training draws per item a level (weighted toward the first, MaskGCT's n_q - i), a mask ratio
sin(pi t / 2), t ~ U(0, 1), floored at min_mask_ratio, and masks that share of the level's frames
(one by one, or in spans of mask_span frames as MAGNeT); the loss is on masked frames only.
Lower levels are given, higher ones unseen; the prompt is dropped for prompt_drop of the items
(classifier-free guidance runs without it), the text for cond_drop.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from narvox.tts import mask_predict
from narvox.tts.conditioning import TextToFrames
from narvox.tts.core import TtsBackend, TtsConfig
from narvox.tts.levels import LevelPredictor


def draw_masks(lengths: Tensor, width: int, ratio: Tensor, span: int) -> Tensor:
    """[B, width] True on frames to mask: about `ratio[b]` of each item's real frames, in spans of
    `span` frames, and at least one."""
    real = torch.arange(width)[None] < lengths[:, None]
    if span <= 1:
        masked = torch.rand(len(lengths), width) < ratio[:, None]
    else:  # span starts with the probability that leaves (1 - ratio) of the frames unmasked
        start = torch.rand(len(lengths), width) < 1 - (1 - ratio[:, None]) ** (1 / span)
        # frame f is masked when a span starts at one of f - span + 1 .. f
        padded = torch.nn.functional.pad(start.float()[:, None], (span - 1, 0))
        masked = torch.nn.functional.max_pool1d(padded, span, 1)[:, 0] > 0
    masked &= real
    empty = ~masked.any(1)
    if empty.any():  # one random real frame of each item that drew none
        pick = (torch.rand(len(lengths)) * lengths).long()
        masked[empty, pick[empty]] = True
    return masked


class MaskedTTS(TtsBackend):
    def __init__(self, config: TtsConfig):
        super().__init__()
        self.config = c = config
        self.levels = LevelPredictor(c, first_level=0, n_layers=c.layers)
        self.text_to_frames = TextToFrames(c)

    def loss(self, batch: dict) -> dict[str, Tensor]:
        c = self.config
        codes, code_lens = batch["codes"][:, :c.n_codebooks], batch["code_lens"]
        prompt, prompt_lens = batch["prompt"][:, :c.n_codebooks], batch["prompt_lens"]
        b = codes.size(0)
        visible = torch.rand(b) >= c.cond_drop
        (text,), text_lens, (cond,), out = self.text_to_frames.for_training([self.levels], batch, codes, prompt,
                                                                            visible)
        weights = torch.arange(c.n_codebooks, 0, -1, dtype=torch.float)
        level = torch.multinomial(weights, b, replacement=True)
        ratio = torch.sin(math.pi / 2 * torch.rand(b)).clamp(min=c.min_mask_ratio)
        known = ~draw_masks(code_lens, codes.size(2), ratio, c.mask_span)
        kept_prompt = torch.where(torch.rand(b) >= c.prompt_drop, prompt_lens, torch.zeros_like(prompt_lens))
        out["ce_levels"], out["acc_levels"] = self.levels.loss(text, text_lens, prompt, kept_prompt, codes, code_lens,
                                                               cond, level, known, visible)
        return out

    def encode(self, phones: Tensor, phone_lens: Tensor, prompt: Tensor | None, prompt_lens: Tensor | None
               ) -> tuple[Tensor, Tensor]:
        (states,), log_d = self.text_to_frames.encode([self.levels], phones, phone_lens, prompt, prompt_lens)
        return states, log_d

    loop = staticmethod(mask_predict.generate)

    def graphs(self) -> "_TorchGraphs":
        return _TorchGraphs(self)


class _TorchGraphs:
    """MaskedTTS as narvox.tts.mask_predict's MaskedGraphs: numpy in, numpy out, no autograd."""

    def __init__(self, model: MaskedTTS):
        self.model = model
        self.conditioning = model.config.conditioning
        self.n_codebooks, self.codebook_size = model.config.n_codebooks, model.config.codebook_size
        self.lookahead = model.config.par_lookahead  # pseudo-AR: frames past the span a step reads

    @torch.no_grad()
    def encode(self, phones, phone_lens, prompt, prompt_lens):
        return tuple(x.numpy() for x in self.model.encode(*map(torch.from_numpy, (phones, phone_lens, prompt,
                                                                                   prompt_lens))))

    @torch.no_grad()
    def levels(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, known):
        tensor = lambda x: None if x is None else torch.from_numpy(x)
        args = map(tensor, (text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, known))
        return self.model.levels.logits(*args).numpy()
