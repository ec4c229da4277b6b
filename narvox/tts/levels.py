"""The stage that predicts one codebook level of every target frame, bidirectionally, from the
levels below it, the level's own codes where they are known, the prompt's codes and the text.

VALL-E's stage for codebooks 2..Q predicts whole levels (nothing of the level known); the masked
backend (MaskGCT's S2A, MAGNeT) fills levels in over several passes, codebook 1 included. The
level being predicted conditions every norm (adaptive LayerNorm).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.models.attention import padding_mask, sinusoids
from narvox.models.transformer import TransformerStack
from narvox.tts.core import CodeEmbedding, Layout, PhoneEncoder, TtsConfig


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
        self.d_model = c.d_model

    def position(self, positions: Tensor) -> Tensor:
        """Per-item audio positions [B, N] as sinusoids [B, N, D]."""
        return sinusoids(positions, self.d_model)

    def prompt(self, codes: Tensor, positions: Tensor) -> Tensor:
        return self.dropout(self.embedding(codes) + self.prompt_marker + self.position(positions))

    def target(self, codes: Tensor, positions: Tensor, frame_cond: Tensor | None) -> Tensor:
        x = self.embedding(codes) + self.target_marker + self.position(positions)
        return self.dropout(x if frame_cond is None else x + frame_cond)


class LevelPredictor(nn.Module):
    """Levels first_level..Q-1 (zero-based). A target slot's input is the sum of the levels below
    the one predicted, that level's code where `known` (its mask token elsewhere) and, aligned,
    the frame's phone; a prompt slot's is the sum of all Q levels."""

    def __init__(self, c: TtsConfig, first_level: int, n_layers: int):
        super().__init__()
        self.c, self.first_level = c, first_level
        self.phones = PhoneEncoder(c)
        self.slots = AudioSlots(c, CodeEmbedding(c.n_codebooks, c.code_vocab, c.d_model))
        self.level_embedding = nn.Embedding(c.n_codebooks, c.d_model)
        self.stack = TransformerStack(c.stack(n_layers), cond_dim=c.d_model)
        n = c.n_codebooks - first_level
        self.heads = nn.Parameter(torch.randn(n, c.codebook_size, c.d_model) * c.d_model ** -0.5)
        self.head_bias = nn.Parameter(torch.zeros(n, c.codebook_size))

    def logits(self, text: Tensor | None, text_lens: Tensor, prompt: Tensor, prompt_lens: Tensor,
               target: Tensor, target_lens: Tensor, frame_cond: Tensor | None, level: Tensor, known: Tensor,
               text_visible: Tensor | None = None) -> Tensor:
        """Logits [B, T, codebook_size] of level[b] of every target frame. target [B, Q, T]: the
        levels below level[b] are read, and level[b] itself where known [B, T]; higher ones never."""
        layout = Layout(text_lens, prompt_lens, target_lens, 0 if text is None else text.size(1),
                        prompt.size(2), target.size(2))
        q = torch.arange(target.size(1))[None, :, None]
        own = (q == level[:, None, None]) & ~known[:, None, :]
        codes = torch.where(own, torch.full_like(target, self.c.mask_id), target)
        used = q <= level[:, None, None]
        embedded = sum(self.slots.embedding.tables[i](codes[:, i]) * used[:, i, :, None] for i in range(target.size(1)))
        positions = layout.audio_positions()
        x = self.slots.target_marker + self.slots.position(positions[:, layout.n_prompt:]) + embedded
        if frame_cond is not None:
            x = x + frame_cond
        parts = [] if text is None else [text]
        parts += [self.slots.prompt(prompt, positions[:, :layout.n_prompt]), self.slots.dropout(x)]
        h = self.stack(torch.cat(parts, dim=1), layout.mask(text_visible), cond=self.level_embedding(level))
        h = h[:, layout.n_text + layout.n_prompt:]
        head = level - self.first_level
        return torch.einsum("btd,bvd->btv", h, self.heads[head]) + self.head_bias[head][:, None, :]

    def loss(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level: Tensor,
             known: Tensor, text_visible=None, scored: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Cross-entropy and accuracy of level[b] on the target frames `scored` [B, T] (default:
        those not `known`)."""
        logits = self.logits(text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, known,
                             text_visible)
        labels = target.gather(1, level[:, None, None].expand(-1, 1, target.size(2))).squeeze(1)
        mask = padding_mask(target_lens, target.size(2)) & (~known if scored is None else scored)
        return F.cross_entropy(logits[mask], labels[mask]), masked_accuracy(logits, labels, mask)
