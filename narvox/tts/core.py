"""What every TTS backend is made of: the config, the phone encoder, code embeddings and heads,
the slot layout of a [text | prompt | target] sequence with its masks, and the generation call
all backends answer.

A backend differs from another only in the order in which it generates codes (autoregressive,
masked, pseudo-autoregressive); the conditioning, how text reaches the frames, is a setting:

- "prefix" (VALL-E, as published): the phones of the prompt's and the target's text are a
  bidirectional prefix that the audio attends to; the alignment is learned implicitly.
- "aligned": a learned monotonic alignment (narvox.tts.aligner) gives each target frame the phone
  it belongs to, added to the frame's input; a duration predictor sets the length.

Batches of unequal lengths are laid out slot by slot, each segment padded to the batch's
longest: [text | prompt | target]. Padding is masked out of every attention and audio positions
are counted per item, so an item's result never depends on its batch-mates.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from narvox.models.attention import PositionalEncoding, padding_mask
from narvox.models.transformer import DecoderConfig, TransformerStack
from narvox.tts.decoding import GenerateOptions

CONDITIONINGS = ("prefix", "aligned")


@dataclass
class TtsConfig:
    conditioning: str = "aligned"
    n_phones: int = 0            # the phone vocabulary (set by the recipe from tokens.txt)
    codebook_size: int = 1024
    n_codebooks: int = 4         # how many codec levels the model generates (fewer is cheaper)
    d_model: int = 192
    n_heads: int = 4
    d_ff: int = 768
    phone_layers: int = 3        # the phone encoder of every stage
    layers: int = 6              # the codebook-1 stage
    residual_layers: int = 4     # the stage of codebooks 2..Q
    dropout: float = 0.1
    align_dim: int = 80          # the aligner's embedding width
    cond_drop: float = 0.1       # share of training items without text (for classifier-free guidance)
    prompt_seconds: float = 3.0  # aligned conditioning: the voice prompt, a crop this long in training,
                                 # evaluation, shipped voices and the API alike
    # VALL-E's codebook-1 stage: share of its teacher-forced input codes replaced by the mask token
    # in training (Tacotron's prenet dropout, for the same reason): without it a small model
    # predicts mostly by copying the codes before and hardly reads the text (measured at step 2,000
    # of conf/valle_aligned.yaml: 50.8 % accuracy with the text, 44.2 % with it hidden)
    token_drop: float = 0.0
    # the masked backend: share of items without their prompt (MaskGCT's guidance), the floor of
    # the mask ratio, and the span masked frames come in (MAGNeT: 3; 1 = frame by frame)
    prompt_drop: float = 0.15
    min_mask_ratio: float = 0.1
    mask_span: int = 1
    # the pseudo-AR backend (PALLE) on codebook 1: the share of the target scored after a known
    # prefix (k = 0.1 T; drawn per item up to par_span_max when that is set, so that decoding
    # may fix any share in between per step), the share of its codebook-1 items trained so (the
    # others learn the refinement: frames masked with probability refine_mask), and how many
    # frames past the span a step sees (aligned conditioning; None: the whole target, PALLE's):
    # each frame knows its phone, so a step needs only a little of what follows, and a step that
    # reads prefix + span + look-ahead instead of the whole target is cheaper, the first most
    par_span: float = 0.1
    par_span_max: float | None = None
    par_share: float = 0.7
    refine_mask: float = 0.1
    par_lookahead: int | None = None

    def __post_init__(self):
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}")
        if self.n_codebooks < 1:
            raise ValueError("n_codebooks must be >= 1")

    def stack(self, n_layers: int) -> DecoderConfig:
        return DecoderConfig(self.d_model, self.n_heads, self.d_ff, n_layers, self.dropout)

    # code ids past the codebook: an end token the codebook-1 stage emits (prefix conditioning),
    # the start token before a target's first frame, a mask token (masked backends)
    @property
    def eos(self) -> int:
        return self.codebook_size

    @property
    def bos(self) -> int:
        return self.codebook_size + 1

    @property
    def mask_id(self) -> int:
        return self.codebook_size + 2

    @property
    def code_vocab(self) -> int:
        return self.codebook_size + 3


class PhoneEncoder(nn.Module):
    """Phone ids [B, L] -> states [B, L, D]: embedding, positions, bidirectional layers."""

    def __init__(self, c: TtsConfig):
        super().__init__()
        self.embedding = nn.Embedding(c.n_phones, c.d_model)
        self.positions = PositionalEncoding(c.d_model, c.dropout)
        self.stack = TransformerStack(c.stack(c.phone_layers))

    def forward(self, phones: Tensor, lens: Tensor) -> Tensor:
        mask = padding_mask(lens, phones.size(1))
        x = self.stack(self.positions(self.embedding(phones)), mask[:, None, :])
        return x * mask[:, :, None]


class CodeEmbedding(nn.Module):
    """One table per codebook (with the special ids of TtsConfig); a frame's embedding is the sum
    over the codebooks given. codes [B, Q', T] with Q' <= Q -> [B, T, D]."""

    def __init__(self, n_codebooks: int, vocab: int, dim: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(vocab, dim) for _ in range(n_codebooks))

    def forward(self, codes: Tensor) -> Tensor:
        return sum(self.tables[q](codes[:, q]) for q in range(codes.size(1)))


def pad_1d(seqs: list[Tensor], value: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad 1-D tensors into [B, T]; returns it and the lengths."""
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), max(int(lens.max()), 1)), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lens


def pad_codes(seqs: list[Tensor], value: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad [Q, T] tensors into [B, Q, T]; returns it and the lengths."""
    lens = torch.tensor([s.size(1) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), seqs[0].size(0), max(int(lens.max()), 1)), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :, :s.size(1)] = s
    return out, lens


def join_text(prompt_phones: Tensor, prompt_lens: Tensor, phones: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
    """Per item, the prompt's phones followed by the target's, right-padded: [B, Lp + L]."""
    total = prompt_lens + lens
    width = max(int(total.max()), 1)
    slots = torch.arange(width)[None, :]
    from_target = (slots - prompt_lens[:, None]).clamp(min=0, max=phones.size(1) - 1)
    out = torch.where(slots < prompt_lens[:, None],
                      prompt_phones.gather(1, slots.clamp(max=prompt_phones.size(1) - 1).expand(len(lens), -1)),
                      phones.gather(1, from_target))
    return out.masked_fill(slots >= total[:, None], 0), total


@dataclass
class Layout:
    """Slots [text | prompt | target], each segment padded to the batch's longest."""
    text_lens: Tensor    # [B] (zeros under the aligned conditioning)
    prompt_lens: Tensor  # [B]
    target_lens: Tensor  # [B]
    n_text: int
    n_prompt: int
    n_target: int

    @property
    def size(self) -> int:
        return self.n_text + self.n_prompt + self.n_target

    def valid(self) -> Tensor:
        """[B, S] True on real slots."""
        return torch.cat([padding_mask(self.text_lens, self.n_text), padding_mask(self.prompt_lens, self.n_prompt),
                          padding_mask(self.target_lens, self.n_target)], dim=1)

    def audio_positions(self) -> Tensor:
        """[B, n_prompt + n_target]: a prompt slot's index, then each target slot counted on from
        the item's own prompt length (the gap of padding between them does not count)."""
        slots = torch.arange(self.n_prompt + self.n_target)[None, :]
        return torch.where(slots < self.n_prompt, slots, slots - self.n_prompt + self.prompt_lens[:, None])

    def first_stage_slots(self, text_visible: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What the codebook-1 stage's `run` takes of the layout [B, S]: is_text, is_prompt,
        positions (text slots count their own), key_valid (real slots; text only where visible)."""
        s = torch.arange(self.size)[None, :].expand(len(self.text_lens), -1)
        is_text = s < self.n_text
        is_prompt = ~is_text & (s < self.n_text + self.n_prompt)
        positions = torch.cat([s[:, :self.n_text], self.audio_positions()], dim=1)
        return is_text, is_prompt, positions, self.valid() & (~is_text | text_visible[:, None])

    def mask(self, text_visible: Tensor | None = None) -> Tensor:
        """[B, S, S] bidirectional attention (the residual stages): True where slot s may attend
        slot r, a real slot; text attends text only, audio attends everything. text_visible [B]
        False hides an item's text from its audio (the unconditional half of CFG). Every slot may
        attend itself, so padded rows are not all-masked (which gives nan). The codebook-1 stage
        builds its causal mask itself (narvox.tts.ar.FirstCodebookLM.run)."""
        keys = self.valid()[:, None, :]
        is_text = torch.arange(self.size) < self.n_text
        if text_visible is not None:
            keys = keys & (~is_text[None, None, :] | text_visible[:, None, None] | is_text[None, :, None])
        rule = ~is_text[:, None] | is_text[None, :]  # text attends text; audio, everything
        s = torch.arange(self.size)
        return (keys & rule[None]) | (s[:, None] == s[None, :])[None]


class TtsBackend(nn.Module, ABC):
    """What the API, the benchmark and the evaluation see of any backend. A backend names its
    torch-free generation loop (`loop`) and gives the computations it runs on (`graphs()`)."""
    config: TtsConfig
    loop: Callable  # (graphs, phones, prompts, prompt_phones, options) -> codes, numpy in and out

    @abstractmethod
    def graphs(self):
        """The module as its loop's graphs (numpy in, numpy out, no autograd)."""

    @torch.no_grad()
    def generate(self, phones: list[Tensor], prompts: list[Tensor], prompt_phones: list[Tensor] | None = None,
                 options: GenerateOptions = GenerateOptions()) -> list[Tensor]:
        """phones: per item the target text's phone ids [L]; prompts: the prompt's codes [Q, P]
        (at least the model's n_codebooks levels); prompt_phones: the prompt text's phone ids
        (the prefix conditioning needs them). Returns per item codes [n_codebooks, F]."""
        numpy = lambda seqs: None if seqs is None else [np.asarray(s) for s in seqs]
        codes = type(self).loop(self.graphs(), numpy(phones), numpy(prompts), numpy(prompt_phones), options)
        return [torch.from_numpy(c) for c in codes]

    @abstractmethod
    def loss(self, batch: dict) -> dict[str, Tensor]:
        """Training losses and accuracies of a batch (the task weighs and sums them)."""
