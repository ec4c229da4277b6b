"""How text reaches the frames of every backend's stages, the one setting that is not the
backend's: the prefix conditioning (each stage encodes prompt text + target text into a prefix its
audio attends to) or the aligned one (a learned alignment gives each target frame its phone's
state; a duration predictor, fed the prompt's voice, replaces it at inference)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.models.attention import padding_mask
from narvox.tts.aligner import (Aligner, DurationPredictor, binarization_loss, forward_sum_loss,
                                monotonic_alignment, regulate)
from narvox.tts.core import CodeEmbedding, TtsConfig, join_text


class TextToFrames(nn.Module):
    """The conditioning of TtsConfig.conditioning. Stages are modules with a `phones` encoder."""

    def __init__(self, c: TtsConfig):
        super().__init__()
        self.aligned = c.conditioning == "aligned"
        if self.aligned:
            self.frame_embedding = CodeEmbedding(c.n_codebooks, c.codebook_size, c.align_dim)
            self.aligner = Aligner(c.n_phones, c.align_dim, c.align_dim)
            self.voice = nn.Linear(c.align_dim, c.d_model)
            self.durations = DurationPredictor(c.d_model, dropout=c.dropout)

    def log_durations(self, states: Tensor, lens: Tensor, prompt: Tensor, prompt_lens: Tensor) -> Tensor:
        """Predicted log(1 + frames) [B, L] of every phone from its state and the prompt's voice
        (the mean of the prompt's frame embeddings). Detached: the duration loss should not pull
        the phone states away from the acoustics."""
        mask = padding_mask(prompt_lens, prompt.size(2))[:, :, None]
        voice = self.voice((self.frame_embedding(prompt) * mask).sum(1) / mask.sum(1).clamp(min=1))
        return self.durations(states.detach() + voice[:, None, :], padding_mask(lens, states.size(1)))

    def for_training(self, stages: list[nn.Module], batch: dict, codes: Tensor, prompt: Tensor, visible: Tensor
                     ) -> tuple[list[Tensor | None], Tensor, list[Tensor | None], dict[str, Tensor]]:
        """Per stage the text prefix (or None) and the frames' phone states (or None), the text
        lengths, and the conditioning's own losses. `visible` [B] False: the item's text is
        hidden (classifier-free guidance's unconditional items)."""
        phones, lens, code_lens = batch["phones"], batch["phone_lens"], batch["code_lens"]
        if not self.aligned:
            text, text_lens = join_text(batch["prompt_phones"], batch["prompt_phone_lens"], phones, lens)
            return [s.phones(text, text_lens) for s in stages], text_lens, [None] * len(stages), {}
        log_align = self.aligner(phones, lens, self.frame_embedding(codes).detach(), code_lens)
        durations = monotonic_alignment(log_align, lens, code_lens)
        states = [s.phones(phones, lens) for s in stages]
        log_d = self.log_durations(states[0], lens, prompt, batch["prompt_lens"])
        mask = padding_mask(lens, phones.size(1))
        losses = {"forward_sum": forward_sum_loss(log_align, lens, code_lens),
                  "binarize": binarization_loss(log_align, durations, code_lens),
                  "duration": F.mse_loss(log_d[mask], DurationPredictor.target(durations)[mask])}
        conds = [regulate(s, durations, codes.size(2)) * visible[:, None, None] for s in states]
        return [None] * len(stages), torch.zeros_like(lens), conds, losses

    def encode(self, stages: list[nn.Module], phones: Tensor, phone_lens: Tensor, prompt: Tensor | None,
               prompt_lens: Tensor | None) -> tuple[list[Tensor], Tensor]:
        """Inference: every stage's phone states [B, L, D] and predicted log(1 + frames) [B, L]
        (aligned; zeros under prefix, whose phones are the prompt's and the target's text)."""
        states = [s.phones(phones, phone_lens) for s in stages]
        if self.aligned:
            return states, self.log_durations(states[0], phone_lens, prompt, prompt_lens)
        return states, torch.zeros(phones.shape, dtype=states[0].dtype)  # no durations: the length is set otherwise
