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
from narvox.tts.core import (CodeEmbedding, GenerateOptions, Layout, PhoneEncoder, TtsBackend, TtsConfig,
                             join_text, pad_1d, pad_codes)
from narvox.tts.sampling import guide, row_generators, sample


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

    def forward(self, text: Tensor | None, text_lens: Tensor, prompt: Tensor, prompt_lens: Tensor,
                target: Tensor, target_lens: Tensor, frame_cond: Tensor | None,
                text_visible: Tensor | None = None) -> dict[str, Tensor]:
        """Teacher-forced: prompt [B, P] and target [B, T] codebook-1 codes; text [B, L, D] (prefix
        conditioning) or frame_cond [B, T, D] (aligned). Returns cross-entropy and accuracy."""
        b = target.size(0)
        slots = target.size(1) + int(self.ends)
        inputs = torch.cat([torch.full((b, 1), self.c.bos, dtype=torch.long), target], dim=1)[:, :slots]
        labels = F.pad(target, (0, slots - target.size(1)))
        if self.ends:
            labels = labels.scatter(1, target_lens[:, None], self.c.eos)
        if frame_cond is not None and slots > frame_cond.size(1):
            frame_cond = F.pad(frame_cond, (0, 0, 0, slots - frame_cond.size(1)))
        layout = Layout(text_lens, prompt_lens, target_lens + int(self.ends), 0 if text is None else text.size(1),
                        prompt.size(1), slots)
        h = self.stack(self._inputs(text, prompt, inputs, frame_cond, layout), layout.mask(True, text_visible))
        logits = self.head(h[:, layout.n_text + layout.n_prompt:])
        mask = padding_mask(layout.target_lens, slots)
        ce = F.cross_entropy(logits[mask], labels[mask])
        return {"ce_first": ce, "acc_first": masked_accuracy(logits, labels, mask)}

    def _inputs(self, text, prompt, target_inputs, frame_cond, layout: Layout) -> Tensor:
        positions = layout.audio_positions()
        parts = [] if text is None else [text]
        parts.append(self.slots.prompt(prompt, positions[:, :layout.n_prompt]))
        parts.append(self.slots.target(target_inputs, positions[:, layout.n_prompt:], frame_cond))
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def decode(self, text: Tensor | None, text_lens: Tensor, prompt: Tensor, prompt_lens: Tensor,
               frame_cond: Tensor | None, max_frames: Tensor, fixed_length: bool,
               options: GenerateOptions, rngs: list[np.random.Generator]) -> tuple[Tensor, Tensor]:
        """Codes [B, T] and lengths [B]: frames are drawn until the end token (prefix
        conditioning, unless `fixed_length`) or max_frames[b]. Classifier-free guidance runs the
        unconditional rows (no text) in the same batch."""
        sampling = options.sampling
        b, guided = prompt.size(0), sampling.cfg_scale != 1
        steps = int(max_frames.max())
        if guided:  # rows b.. are the same items without their text
            double = lambda x: None if x is None else torch.cat([x, x])
            text, text_lens, prompt, prompt_lens = double(text), double(text_lens), double(prompt), double(prompt_lens)
            if frame_cond is not None:
                frame_cond = torch.cat([frame_cond, torch.zeros_like(frame_cond)])
        rows = prompt.size(0)
        text_visible = torch.arange(rows) < b
        layout = Layout(text_lens, prompt_lens, torch.full((rows,), steps), 0 if text is None else text.size(1),
                        prompt.size(1), steps)
        n0 = layout.n_text + layout.n_prompt
        full_mask = layout.mask(True, text_visible)
        positions = layout.audio_positions()[:, layout.n_prompt:]
        parts = [] if text is None else [text]
        parts.append(self.slots.prompt(prompt, layout.audio_positions()[:, :layout.n_prompt]))
        _, cache = self.stack.step(torch.cat(parts, dim=1), mask=full_mask[:, :n0, :n0])
        prev = torch.full((rows, 1), self.c.bos, dtype=torch.long)
        out = np.zeros((b, steps), dtype=np.int64)
        lengths = max_frames.clone()
        done = np.zeros(b, dtype=bool)
        for t in range(steps):
            cond = None if frame_cond is None else frame_cond[:, t:t + 1]
            x = self.slots.target(prev, positions[:, t:t + 1], cond)
            h, cache = self.stack.step(x, cache, mask=full_mask[:, n0 + t:n0 + t + 1, :n0 + t + 1])
            logits = self.head(h[:, 0]).float()
            if not self.ends or fixed_length:
                logits[:, self.c.eos] = float("-inf")
            logits = logits.numpy()
            if guided:
                logits = guide(logits[:b], logits[b:], sampling.cfg_scale)
            tokens = sample(logits, sampling, rngs, out[:, :t])
            out[:, t] = tokens
            ended = (tokens == self.c.eos) & ~done
            lengths[torch.from_numpy(ended)] = t
            done |= ended | (t + 1 >= max_frames.numpy())
            if done.all():
                break
            prev = torch.from_numpy(np.concatenate([tokens, tokens]) if guided else tokens)[:, None]
        return torch.from_numpy(out), lengths


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
        h = self.stack(torch.cat(parts, dim=1), layout.mask(False, text_visible), cond=self.level_embedding(level))
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

    @torch.no_grad()
    def decode(self, text, text_lens, prompt, prompt_lens, first: Tensor, target_lens, frame_cond) -> Tensor:
        """Levels 2..Q of first [B, T] (codebook 1), greedily -> codes [B, Q, T]."""
        codes = torch.zeros(first.size(0), self.c.n_codebooks, first.size(1), dtype=torch.long)
        codes[:, 0] = first
        for q in range(1, self.c.n_codebooks):
            level = torch.full((first.size(0),), q)
            logits = self.logits(text, text_lens, prompt, prompt_lens, codes, target_lens, frame_cond, level)
            codes[:, q] = logits.argmax(-1)
        return codes


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

    # -- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, phones: list[Tensor], prompts: list[Tensor], prompt_phones: list[Tensor] | None = None,
                 options: GenerateOptions = GenerateOptions()) -> list[Tensor]:
        c = self.config
        b = len(phones)
        if len(prompts) != b or (prompt_phones is not None and len(prompt_phones) != b):
            raise ValueError("give one prompt (and prompt text) per item")
        for i, p in enumerate(prompts):
            if p.dim() != 2 or p.size(0) < c.n_codebooks or p.size(1) == 0:
                raise ValueError(f"item {i}: prompt codes must be [>= {c.n_codebooks} codebooks, frames > 0], "
                                 f"got {tuple(p.shape)}")
        if options.durations is not None and len(options.durations) != b:
            raise ValueError("give one duration per item")
        ph, lens = pad_1d(phones)
        prompt, prompt_lens = pad_codes([p[:c.n_codebooks] for p in prompts])
        rngs = row_generators(options.seed, b)
        if c.conditioning == "aligned":
            stages = [self.first] + ([self.rest] if self.rest is not None else [])
            states = [s.phones(ph, lens) for s in stages]
            mask = padding_mask(lens, ph.size(1))
            durations = DurationPredictor.frames(self._log_durations(states[0], lens, prompt, prompt_lens), mask,
                                                 options.speed)
            if options.durations is not None:
                durations = fit_durations(durations, torch.tensor(options.durations), lens)
            n_frames = durations.sum(1)
            conds = [regulate(s, durations, int(n_frames.max())) for s in states]
            texts, text_lens = [None] * len(stages), torch.zeros_like(lens)
            first, n_frames = self.first.decode(None, text_lens, prompt[:, 0], prompt_lens, conds[0], n_frames,
                                                True, options, rngs)
        else:
            if prompt_phones is None:
                raise ValueError("the prefix conditioning needs the prompt's phones")
            pp, pp_lens = pad_1d(prompt_phones)
            stages = [self.first] + ([self.rest] if self.rest is not None else [])
            encoded = [self._text(s, ph, lens, pp, pp_lens) for s in stages]
            texts, text_lens = [t for t, _ in encoded], encoded[0][1]
            conds = [None] * len(stages)
            fixed = options.durations is not None
            cap = (torch.tensor(options.durations) if fixed
                   else torch.ceil(lens * options.max_frames_per_phone).long())
            first, n_frames = self.first.decode(texts[0], text_lens, prompt[:, 0], prompt_lens, None, cap, fixed,
                                                options, rngs)
        width = max(int(n_frames.max()), 1)
        first = first[:, :width]
        if self.rest is None:
            codes = first[:, None]
        else:
            cond = None if conds[1] is None else conds[1][:, :width]
            codes = self.rest.decode(texts[1], text_lens, prompt, prompt_lens, first, n_frames, cond)
        return [codes[i, :, :int(n_frames[i])] for i in range(b)]


def fit_durations(durations: Tensor, totals: Tensor, lens: Tensor) -> Tensor:
    """Scale per-phone frames [B, L] to sum to totals [B], keeping their proportions (rounded
    on the cumulative sum, so the total is exact) and at least one frame per phone."""
    if bool((totals < lens).any()):
        raise ValueError(f"a duration of {int(totals.min())} frames is shorter than the text's "
                         f"{int(lens[totals < lens][0])} phones")
    spare = (totals - lens).float()
    mask = padding_mask(lens, durations.size(1)).float()
    extra = (durations - 1).clamp(min=0).float() * mask
    extra = torch.where(extra.sum(1, keepdim=True) > 0, extra, mask)  # all at one frame: spread evenly
    share = extra.cumsum(1) / extra.sum(1, keepdim=True).clamp(min=1e-6)
    ends = torch.round(share * spare[:, None]).long()
    added = torch.diff(ends, dim=1, prepend=torch.zeros_like(ends[:, :1]))
    return (1 + added) * padding_mask(lens, durations.size(1))
