"""The autoregressive backend, VALL-E style: codebook 1 frame by frame with a KV cache, then
codebooks 2..Q in one bidirectional pass each (the stage given to every norm by adaptive
LayerNorm, one level drawn per training item, greedy at inference).

Under the prefix conditioning the codebook-1 stage ends on its end token; under the aligned
one the duration predictor fixes the length and every frame's input carries its phone.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.models.attention import padding_mask
from narvox.models.transformer import TransformerStack
from narvox.tts.aligner import (Aligner, DurationPredictor, binarization_loss, forward_sum_loss,
                                monotonic_alignment, regulate)
from narvox.tts import decoding
from narvox.tts.core import (CodeEmbedding, GenerateOptions, Layout, PhoneEncoder, TtsBackend, TtsConfig,
                             join_text)


def masked_accuracy(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    return ((logits.argmax(-1) == labels) & mask).sum() / mask.sum().clamp(min=1)


class AudioSlots(nn.Module):
    """The input vectors of the prompt and target slots: code embeddings, a marker saying which
    segment a slot is in, the frame's phone (aligned conditioning), per-item audio positions."""

    def __init__(self, c: TtsConfig, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding
        self.prompt_marker = nn.Parameter(torch.zeros(c.d_model))
        self.target_marker = nn.Parameter(torch.zeros(c.d_model))
        self.dropout = nn.Dropout(c.dropout)
        # sinusoids as in narvox.models.attention.PositionalEncoding, indexed per item
        position = torch.arange(8000)[:, None]
        div = torch.exp(torch.arange(0, c.d_model, 2) * (-math.log(10000.0) / c.d_model))
        pe = torch.zeros(8000, c.d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pe", pe, persistent=False)

    def prompt(self, codes: Tensor, positions: Tensor) -> Tensor:
        return self.dropout(self.embedding(codes) + self.prompt_marker + self.pe[positions])

    def target(self, codes: Tensor, positions: Tensor, frame_cond: Tensor | None) -> Tensor:
        x = self.embedding(codes) + self.target_marker + self.pe[positions]
        return self.dropout(x if frame_cond is None else x + frame_cond)


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
        audio = self.slots.embedding(tokens) + marker + self.slots.pe[positions] + frame_cond
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


class ResidualLevels(nn.Module):
    """Codebooks 2..Q, one level per pass, bidirectional: a target slot's input is the sum of the
    levels below the one predicted (and, aligned, its phone), a prompt slot's the sum of all Q;
    the level predicted conditions every norm."""

    def __init__(self, c: TtsConfig):
        super().__init__()
        self.c = c
        self.phones = PhoneEncoder(c)
        self.slots = AudioSlots(c, CodeEmbedding(c.n_codebooks, c.code_vocab, c.d_model))
        self.level_embedding = nn.Embedding(c.n_codebooks, c.d_model)
        self.stack = TransformerStack(c.stack(c.residual_layers), cond_dim=c.d_model)
        self.heads = nn.Parameter(torch.randn(c.n_codebooks - 1, c.codebook_size, c.d_model) * c.d_model ** -0.5)
        self.head_bias = nn.Parameter(torch.zeros(c.n_codebooks - 1, c.codebook_size))

    def logits(self, text: Tensor | None, text_lens: Tensor, prompt: Tensor, prompt_lens: Tensor,
               target: Tensor, target_lens: Tensor, frame_cond: Tensor | None, level: Tensor,
               text_visible: Tensor | None = None) -> Tensor:
        """Logits [B, T, codebook_size] of level[b] (1..Q-1, zero-based) of every target frame,
        from the target's levels below it (target [B, Q, T]; higher levels are ignored)."""
        layout = Layout(text_lens, prompt_lens, target_lens, 0 if text is None else text.size(1),
                        prompt.size(2), target.size(2))
        below = torch.arange(target.size(1))[None, :, None] < level[:, None, None]
        embedded = sum(self.slots.embedding.tables[q](target[:, q]) * below[:, q, :, None]
                       for q in range(target.size(1)))
        positions = layout.audio_positions()
        x = self.slots.target_marker + self.slots.pe[positions[:, layout.n_prompt:]] + embedded
        if frame_cond is not None:
            x = x + frame_cond
        parts = [] if text is None else [text]
        parts += [self.slots.prompt(prompt, positions[:, :layout.n_prompt]), self.slots.dropout(x)]
        h = self.stack(torch.cat(parts, dim=1), layout.mask(text_visible), cond=self.level_embedding(level))
        h = h[:, layout.n_text + layout.n_prompt:]
        return torch.einsum("btd,bvd->btv", h, self.heads[level - 1]) + self.head_bias[level - 1][:, None, :]

    def forward(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond,
                text_visible=None) -> dict[str, Tensor]:
        level = torch.randint(1, self.c.n_codebooks, (target.size(0),))
        logits = self.logits(text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, text_visible)
        labels = target.gather(1, level[:, None, None].expand(-1, 1, target.size(2))).squeeze(1)
        mask = padding_mask(target_lens, target.size(2))
        return {"ce_rest": F.cross_entropy(logits[mask], labels[mask]),
                "acc_rest": masked_accuracy(logits, labels, mask)}


class ValleTTS(TtsBackend):
    """VALL-E: FirstCodebookLM + ResidualLevels, and under the aligned conditioning the aligner
    and duration predictor they share."""

    def __init__(self, config: TtsConfig):
        super().__init__()
        self.config = c = config
        self.first = FirstCodebookLM(c)
        self.rest = ResidualLevels(c) if c.n_codebooks > 1 else None
        if c.conditioning == "aligned":
            self.frame_embedding = CodeEmbedding(c.n_codebooks, c.codebook_size, c.align_dim)
            self.aligner = Aligner(c.n_phones, c.align_dim, c.align_dim)
            self.voice = nn.Linear(c.align_dim, c.d_model)
            self.durations = DurationPredictor(c.d_model, dropout=c.dropout)

    # -- conditioning -------------------------------------------------------------------------
    def _voice(self, prompt: Tensor, prompt_lens: Tensor) -> Tensor:
        """[B, D]: the mean of the prompt's frame embeddings, projected."""
        mask = padding_mask(prompt_lens, prompt.size(2))[:, :, None]
        mean = (self.frame_embedding(prompt) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.voice(mean)

    def _log_durations(self, states: Tensor, lens: Tensor, prompt: Tensor, prompt_lens: Tensor) -> Tensor:
        # detached: the duration loss should not pull the phone states away from the acoustics
        return self.durations(states.detach() + self._voice(prompt, prompt_lens)[:, None, :],
                              padding_mask(lens, states.size(1)))

    def _text(self, stage: nn.Module, phones, lens, prompt_phones, prompt_phone_lens):
        """Prefix conditioning: the stage's encoding of prompt text + target text."""
        text, text_lens = join_text(prompt_phones, prompt_phone_lens, phones, lens)
        return stage.phones(text, text_lens), text_lens

    # -- training -----------------------------------------------------------------------------
    def loss(self, batch: dict, step: int = 0) -> dict[str, Tensor]:
        c = self.config
        phones, lens = batch["phones"], batch["phone_lens"]
        codes, code_lens = batch["codes"][:, :c.n_codebooks], batch["code_lens"]
        prompt, prompt_lens = batch["prompt"][:, :c.n_codebooks], batch["prompt_lens"]
        visible = torch.rand(phones.size(0)) >= c.cond_drop
        out: dict[str, Tensor] = {}
        stages = [self.first] + ([self.rest] if self.rest is not None else [])
        if c.conditioning == "aligned":
            log_align = self.aligner(phones, lens, self.frame_embedding(codes).detach(), code_lens)
            durations = monotonic_alignment(log_align, lens, code_lens)
            out["forward_sum"] = forward_sum_loss(log_align, lens, code_lens)
            out["binarize"] = binarization_loss(log_align, durations, code_lens)
            states = [s.phones(phones, lens) for s in stages]
            log_d = self._log_durations(states[0], lens, prompt, prompt_lens)
            mask = padding_mask(lens, phones.size(1))
            out["duration"] = F.mse_loss(log_d[mask], DurationPredictor.target(durations)[mask])
            conds = [regulate(s, durations, codes.size(2)) * visible[:, None, None] for s in states]
            texts = [None] * len(stages)
            text_lens = torch.zeros_like(lens)
        else:
            conds = [None] * len(stages)
            encoded = [self._text(s, phones, lens, batch["prompt_phones"], batch["prompt_phone_lens"]) for s in stages]
            texts = [t for t, _ in encoded]
            text_lens = encoded[0][1]
        out.update(self.first(texts[0], text_lens, prompt[:, 0], prompt_lens, codes[:, 0], code_lens, conds[0], visible))
        if self.rest is not None:
            out.update(self.rest(texts[1], text_lens, prompt, prompt_lens, codes, code_lens, conds[1], visible))
        return out

    # -- inference: what narvox.tts.decoding runs its loops on (with FirstCodebookLM.run, ------
    # -- ResidualLevels.logits) ------------------------------------------------------------------
    def encode(self, phones: Tensor, phone_lens: Tensor, prompt: Tensor, prompt_lens: Tensor
               ) -> tuple[Tensor, Tensor, Tensor]:
        """Phone states of both stages [B, L, D] and predicted log(1 + frames) [B, L] (aligned;
        zeros under prefix, whose phones are the prompt's and the target's text)."""
        first = self.first.phones(phones, phone_lens)
        rest = first if self.rest is None else self.rest.phones(phones, phone_lens)
        if self.config.conditioning == "aligned":
            return first, rest, self._log_durations(first, phone_lens, prompt, prompt_lens)
        return first, rest, torch.zeros(phones.shape, dtype=first.dtype)  # no durations: the end token stops

    @torch.no_grad()
    def generate(self, phones: list[Tensor], prompts: list[Tensor], prompt_phones: list[Tensor] | None = None,
                 options: GenerateOptions = GenerateOptions()) -> list[Tensor]:
        numpy = lambda seqs: None if seqs is None else [np.asarray(s) for s in seqs]
        codes = decoding.generate(_TorchGraphs(self), numpy(phones), numpy(prompts), numpy(prompt_phones), options)
        return [torch.from_numpy(c) for c in codes]


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
        args = map(tensor, (text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level))
        return self.model.rest.logits(*args).numpy()
