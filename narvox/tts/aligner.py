"""The aligned conditioning: a learned monotonic phone-to-frame alignment, a duration predictor,
and the length regulator that gives every frame the phone it belongs to.

The aligner follows "One TTS Alignment To Rule Them All" (arXiv 2108.10447): phones and frames
are embedded by small convolution stacks, their pairwise distances give a soft alignment, the
forward-sum loss (CTC with the phones as labels, each visited once and in order) trains it, a
static beta-binomial prior keeps it near the diagonal while it is still random, and monotonic
alignment search (Viterbi) turns it into hard durations. A binarisation loss, switched on late,
pulls the soft alignment onto the hard one. The durations train the duration predictor, which
replaces the aligner at inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.models.attention import padding_mask

NEG = -1e4  # "impossible" as a finite log-probability: -inf turns CTC's and softmax's sums to nan


class MaskedConvStack(nn.Module):
    """1-D convolutions with ReLU over [B, T, C] whose padded frames are zeroed before every
    convolution, so no real frame ever sees padding (batch-mates cannot change its output)."""

    def __init__(self, channels: list[int], kernel: int = 3, dropout: float = 0.0):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, padding=kernel // 2)
                                   for a, b in zip(channels, channels[1:]))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x.transpose(1, 2)
        keep = mask[:, None, :].to(x.dtype)
        for i, conv in enumerate(self.convs):
            x = conv(x * keep)
            if i + 1 < len(self.convs):
                x = self.dropout(F.relu(x))
        return (x * keep).transpose(1, 2)


def beta_binomial_log_prior(phone_lens: Tensor, frame_lens: Tensor, max_phones: int, max_frames: int,
                            scaling: float = 1.0) -> Tensor:
    """[B, F, L] log P(phone l | frame f): for frame f of F, a beta-binomial over the L phones
    with a = s(f + 1), b = s(F - f), whose mass slides along the diagonal. Padding gets NEG."""
    n = (phone_lens - 1).clamp(min=0).to(torch.float32)[:, None, None]
    k = torch.arange(max_phones, dtype=torch.float32, device=phone_lens.device)[None, None, :]
    f = torch.arange(max_frames, dtype=torch.float32, device=phone_lens.device)[None, :, None]
    a = scaling * (f + 1)
    b = scaling * (frame_lens.to(torch.float32)[:, None, None] - f).clamp(min=1)
    log_choose = torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma((n - k).clamp(min=0) + 1)
    log_beta = lambda x, y: torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)
    prior = log_choose + log_beta(k + a, (n - k).clamp(min=0) + b) - log_beta(a, b)
    valid = (k < phone_lens[:, None, None]) & (f < frame_lens[:, None, None])
    return prior.masked_fill(~valid, NEG)


@torch.no_grad()
def monotonic_alignment(log_probs: Tensor, phone_lens: Tensor, frame_lens: Tensor) -> Tensor:
    """Hard durations [B, L] (summing to each frame length) of the most probable monotonic path
    through log_probs [B, F, L] that starts on the first phone, ends on the last, visits every
    phone and never goes back. Viterbi over frames, vectorised over batch and phones; needs
    F >= L for every item."""
    if bool((frame_lens < phone_lens).any()):
        raise ValueError("every item needs at least as many frames as phones")
    b, n_frames, n_phones = log_probs.shape
    lp = log_probs.float().masked_fill(~padding_mask(phone_lens, n_phones)[:, None, :], NEG)
    score = torch.full((b, n_phones), 2 * NEG * n_frames, device=lp.device)
    score[:, 0] = lp[:, 0, 0]
    moved = torch.zeros(b, n_frames, n_phones, dtype=torch.bool, device=lp.device)
    for f in range(1, n_frames):
        came = F.pad(score[:, :-1], (1, 0), value=4 * NEG * n_frames)
        moved[:, f] = came > score
        score = torch.maximum(score, came) + lp[:, f]
    durations = torch.zeros(b, n_phones, dtype=torch.long, device=lp.device)
    phone = phone_lens - 1
    rows = torch.arange(b, device=lp.device)
    for f in range(n_frames - 1, -1, -1):
        active = f < frame_lens
        durations[rows[active], phone[active]] += 1
        phone = torch.where(active, phone - moved[rows, f, phone.clamp(min=0)].long(), phone)
    return durations


def frame_to_phone(durations: Tensor, n_frames: int) -> Tensor:
    """[B, L] durations -> [B, F] index of the phone each frame belongs to (the length
    regulator as a gather index; tensor ops only, so it exports to ONNX). Frames past the
    durations' sum point at the last phone; callers mask them."""
    ends = durations.cumsum(dim=1)
    frames = torch.arange(n_frames, device=durations.device)
    index = (frames[None, :, None] >= ends[:, None, :]).sum(dim=2)
    return index.clamp(max=durations.size(1) - 1)


def regulate(phone_states: Tensor, durations: Tensor, n_frames: int) -> Tensor:
    """Phone states [B, L, D] repeated by durations into frames [B, F, D]."""
    index = frame_to_phone(durations, n_frames)
    return phone_states.gather(1, index[:, :, None].expand(-1, -1, phone_states.size(2)))


class Aligner(nn.Module):
    """Soft and hard phone-to-frame alignments from phone ids and the frames' summed code
    embeddings (training only: inference takes the duration predictor's durations)."""

    def __init__(self, n_phones: int, frame_dim: int, dim: int = 80):
        super().__init__()
        self.phone_embedding = nn.Embedding(n_phones, dim)
        self.keys = MaskedConvStack([dim, 2 * dim, dim])
        self.queries = MaskedConvStack([frame_dim, 2 * dim, dim, dim])
        self.dim = dim

    def forward(self, phones: Tensor, phone_lens: Tensor, frames: Tensor, frame_lens: Tensor) -> Tensor:
        """phones [B, L], frames [B, F, frame_dim] -> log alignment [B, F, L] (log-softmax over
        the real phones, plus the beta-binomial prior)."""
        phone_mask = padding_mask(phone_lens, phones.size(1))
        keys = self.keys(self.phone_embedding(phones), phone_mask)
        queries = self.queries(frames, padding_mask(frame_lens, frames.size(1)))
        # squared distances scaled by the width, so a fresh model starts with soft alignments
        distance = torch.cdist(queries, keys).pow(2) / self.dim
        logits = (-distance).masked_fill(~phone_mask[:, None, :], NEG)
        prior = beta_binomial_log_prior(phone_lens, frame_lens, phones.size(1), frames.size(1))
        log_align = F.log_softmax(logits, dim=2) + prior
        return F.log_softmax(log_align.masked_fill(~phone_mask[:, None, :], NEG), dim=2)


def forward_sum_loss(log_align: Tensor, phone_lens: Tensor, frame_lens: Tensor) -> Tensor:
    """CTC over the phones (labels 1..L, 0 a blank of constant log-probability -1 as in RAD-TTS):
    the summed probability of every monotonic path visiting each phone once."""
    b, _, n_phones = log_align.shape
    with_blank = F.log_softmax(F.pad(log_align, (1, 0), value=-1.0), dim=2)
    targets = torch.arange(1, n_phones + 1, device=log_align.device).expand(b, -1)
    return F.ctc_loss(with_blank.transpose(0, 1), targets, frame_lens, phone_lens, blank=0,
                      reduction="mean", zero_infinity=True)


def binarization_loss(log_align: Tensor, durations: Tensor, frame_lens: Tensor) -> Tensor:
    """-log of the soft alignment on the hard path, per frame: pulls the soft onto the hard."""
    index = frame_to_phone(durations, log_align.size(1))
    on_path = log_align.gather(2, index[:, :, None]).squeeze(2)
    mask = padding_mask(frame_lens, log_align.size(1))
    return -(on_path * mask).sum() / mask.sum()


class DurationPredictor(nn.Module):
    """log(1 + frames) of every phone from its encoder state and the voice (FastSpeech 2's
    predictor: two masked convolutions with LayerNorm, a linear output)."""

    def __init__(self, dim: int, hidden: int = 256, kernel: int = 3, dropout: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv1d(dim, hidden, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        """states [B, L, D], mask [B, L] -> log(1 + duration) [B, L] (0 on padding)."""
        keep = mask[:, :, None].to(states.dtype)
        x = states * keep
        for conv, norm in ((self.conv1, self.norm1), (self.conv2, self.norm2)):
            x = self.dropout(norm(F.relu(conv(x.transpose(1, 2)).transpose(1, 2)))) * keep
        return self.out(x).squeeze(2) * mask

    @staticmethod
    def target(durations: Tensor) -> Tensor:
        return torch.log1p(durations.float())
