"""The autoregressive backend, VALL-E style: codebook 1 frame by frame with a KV cache, then
codebooks 2..Q in one bidirectional pass each (the stage given to every norm by adaptive
LayerNorm, one level drawn per training item, greedy at inference).

Under the prefix conditioning the codebook-1 stage ends on its end token; under the aligned
one the duration predictor fixes the length and every frame's input carries its phone.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.models.attention import padding_mask
from narvox.models.transformer import TransformerStack
from narvox.tts import decoding
from narvox.tts.conditioning import TextToFrames
from narvox.tts.core import GenerateOptions, Layout, PhoneEncoder, TtsBackend, TtsConfig
from narvox.tts.levels import AudioSlots, LevelPredictor, masked_accuracy


class FirstCodebookLM(nn.Module):
    """Codebook 1, left to right. Target slot t's input is the code of frame t-1 (the start token
    for t = 0) plus, aligned, the phone of frame t; its output predicts frame t's code, and under
    the prefix conditioning the slot after the last frame predicts the end token."""

    def __init__(self, c: TtsConfig):
        super().__init__()
        self.c = c
        self.phones = PhoneEncoder(c)
        self.slots = AudioSlots(c, _FirstCodes(c))
        self.stack = TransformerStack(c.stack(c.layers))
        self.head = nn.Linear(c.d_model, c.codebook_size + 1)  # + the end token

    @property
    def ends(self) -> bool:
        return self.c.conditioning == "prefix"

    def run(self, tokens: Tensor, text: Tensor, frame_cond: Tensor, is_text: Tensor, is_prompt: Tensor,
            positions: Tensor, key_valid: Tensor, key_is_text: Tensor, keys: Tensor | None = None,
            values: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The one computation of this stage, in training (a whole sequence) and generation (the
        [text | prompt] prefill, then one target slot per step), so both are the same graph.

        n new slots [B, n] extend a cache of `past` slots: tokens (codes; anything on text slots),
        text [B, n, D] (phone states on text slots), frame_cond [B, n, D] (the phone of a target
        frame, aligned; zeros otherwise), is_text / is_prompt (the slot's segment), positions
        (audio positions, per item). key_valid / key_is_text [B, past + n] describe every key:
        whether audio may see it (real, and text only when visible) and whether it is text. Text
        attends text; audio attends text and earlier audio. Returns logits [B, n, V + 1] and the
        cache grown by n."""
        marker = torch.where(is_prompt[..., None], self.slots.prompt_marker, self.slots.target_marker)
        audio = self.slots.embedding(tokens) + marker + self.slots.position(positions) + frame_cond
        x = torch.where(is_text[..., None], text, self.slots.dropout(audio))
        past = 0 if keys is None else keys.size(3)
        queries = torch.arange(tokens.size(1)) + past
        k_index = torch.arange(key_valid.size(1))
        later = k_index[None, None, :] <= queries[None, :, None]
        k_text = key_is_text[:, None, :]
        q_text = is_text[:, :, None]
        rule = (q_text & k_text) | (~q_text & (k_text | later))  # logic, not where: ORT has no bool Where
        mask = (key_valid[:, None, :] & rule) | (k_index[None, None, :] == queries[None, :, None])
        h, (keys, values) = self.stack.step(x, None if keys is None else (keys, values), mask=mask)
        return self.head(h), keys, values

    def forward(self, text: Tensor | None, text_lens: Tensor, prompt: Tensor, prompt_lens: Tensor,
                target: Tensor, target_lens: Tensor, frame_cond: Tensor | None,
                text_visible: Tensor | None = None) -> dict[str, Tensor]:
        """Teacher-forced: prompt [B, P] and target [B, T] codebook-1 codes; text [B, L, D] (prefix
        conditioning) or frame_cond [B, T, D] (aligned). Returns cross-entropy and accuracy."""
        b, d = target.size(0), self.c.d_model
        slots = target.size(1) + int(self.ends)
        inputs = torch.cat([torch.full((b, 1), self.c.bos, dtype=torch.long), target], dim=1)[:, :slots]
        if self.training and self.c.token_drop > 0:  # the start token always stays
            dropped = torch.rand(inputs.shape) < self.c.token_drop
            dropped[:, 0] = False
            inputs = inputs.masked_fill(dropped, self.c.mask_id)
        labels = F.pad(target, (0, slots - target.size(1)))
        if self.ends:
            labels = labels.scatter(1, target_lens[:, None], self.c.eos)
        layout = Layout(text_lens, prompt_lens, target_lens + int(self.ends), 0 if text is None else text.size(1),
                        prompt.size(1), slots)
        n0 = layout.n_text + layout.n_prompt
        if text_visible is None:
            text_visible = torch.ones(b, dtype=torch.bool)
        is_text, is_prompt, positions, key_valid = layout.first_stage_slots(text_visible)
        tokens = torch.cat([torch.zeros(b, layout.n_text, dtype=torch.long), prompt, inputs], dim=1)
        text_in = torch.zeros(b, layout.size, d) if text is None else F.pad(text, (0, 0, 0, layout.size - layout.n_text))
        cond = torch.zeros(b, layout.size, d)
        if frame_cond is not None:
            cond[:, n0:n0 + frame_cond.size(1)] = frame_cond[:, :slots]
        logits, _, _ = self.run(tokens, text_in, cond, is_text, is_prompt, positions, key_valid, is_text)
        logits = logits[:, n0:]
        mask = padding_mask(layout.target_lens, slots)
        ce = F.cross_entropy(logits[mask], labels[mask])
        return {"ce_first": ce, "acc_first": masked_accuracy(logits, labels, mask)}


class _FirstCodes(nn.Module):
    """Codebook-1 ids (with the start token) [B, T] -> [B, T, D]."""

    def __init__(self, c: TtsConfig):
        super().__init__()
        self.table = nn.Embedding(c.code_vocab, c.d_model)

    def forward(self, codes: Tensor) -> Tensor:
        return self.table(codes)


class ValleTTS(TtsBackend):
    """VALL-E: FirstCodebookLM for codebook 1, a LevelPredictor for codebooks 2..Q (whole levels,
    one drawn per training item, greedy at inference), and the conditioning they share."""

    def __init__(self, config: TtsConfig):
        super().__init__()
        self.config = c = config
        self.first = FirstCodebookLM(c)
        self.rest = LevelPredictor(c, first_level=1, n_layers=c.residual_layers) if c.n_codebooks > 1 else None
        self.text_to_frames = TextToFrames(c)

    @property
    def stages(self) -> list[nn.Module]:
        return [self.first] + ([self.rest] if self.rest is not None else [])

    def loss(self, batch: dict) -> dict[str, Tensor]:
        c = self.config
        codes, code_lens = batch["codes"][:, :c.n_codebooks], batch["code_lens"]
        prompt, prompt_lens = batch["prompt"][:, :c.n_codebooks], batch["prompt_lens"]
        visible = torch.rand(codes.size(0)) >= c.cond_drop
        texts, text_lens, conds, out = self.text_to_frames.for_training(self.stages, batch, codes, prompt, visible)
        out.update(self.first(texts[0], text_lens, prompt[:, 0], prompt_lens, codes[:, 0], code_lens, conds[0], visible))
        if self.rest is not None:
            level = torch.randint(1, c.n_codebooks, (codes.size(0),))
            nothing_known = torch.zeros(codes.size(0), codes.size(2), dtype=torch.bool)
            out["ce_rest"], out["acc_rest"] = self.rest.loss(texts[1], text_lens, prompt, prompt_lens, codes, code_lens,
                                                             conds[1], level, nothing_known, visible)
        return out

    # -- inference: what narvox.tts.decoding runs its loops on (with FirstCodebookLM.run and
    # -- LevelPredictor.logits) ----------------------------------------------------------------
    def encode(self, phones: Tensor, phone_lens: Tensor, prompt: Tensor | None, prompt_lens: Tensor | None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """Phone states of both stages [B, L, D] and predicted log(1 + frames) [B, L]."""
        states, log_d = self.text_to_frames.encode(self.stages, phones, phone_lens, prompt, prompt_lens)
        return states[0], states[-1], log_d

    loop = staticmethod(decoding.generate)

    def graphs(self) -> "_TorchGraphs":
        return _TorchGraphs(self)


class _TorchGraphs:
    """ValleTTS as narvox.tts.decoding's ValleGraphs: numpy in, numpy out, no autograd."""

    def __init__(self, model: ValleTTS):
        self.model = model
        self.conditioning = model.config.conditioning
        self.n_codebooks, self.codebook_size = model.config.n_codebooks, model.config.codebook_size
        self.d_model = model.config.d_model

    @torch.no_grad()
    def encode(self, phones, phone_lens, prompt, prompt_lens):
        out = self.model.encode(*map(torch.from_numpy, (phones, phone_lens, prompt, prompt_lens)))
        return tuple(x.numpy() for x in out)

    @torch.no_grad()
    def lm(self, tokens, text, frame_cond, is_text, is_prompt, positions, key_valid, key_is_text, cache):
        args = map(torch.from_numpy, (tokens, text, frame_cond, is_text, is_prompt, positions, key_valid, key_is_text))
        logits, keys, values = self.model.first.run(*args, *(cache or (None, None)))
        return logits.numpy(), (keys, values)

    @torch.no_grad()
    def residual(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level):
        tensor = lambda x: None if x is None else torch.from_numpy(x)
        known = torch.zeros(target.shape[0], target.shape[2], dtype=torch.bool)  # whole levels
        args = map(tensor, (text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level))
        return self.model.rest.logits(*args, known).numpy()
