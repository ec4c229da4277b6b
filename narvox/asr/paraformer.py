"""Paraformer (Gao et al. 2022): LFR features -> Conformer encoder -> CIF -> parallel decoder.

One module holds the training forward (CE + quantity + optional CTC, with the GLM sampler), the
non-autoregressive inference, and the export forward that funasr-onnx and sherpa-onnx expect.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.asr.cif import CifPredictor, cif
from narvox.asr.search import cif_token_starts
from narvox.models.attention import padding_mask
from narvox.models.conformer import ConformerEncoder, EncoderConfig
from narvox.models.transformer import DecoderConfig, TransformerStack, rename_keys_on_load

IGNORE = -1


@dataclass
class ParaformerConfig:
    vocab_size: int
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(input_dim=560, input_layer="linear"))
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    lfr_m: int = 7
    lfr_n: int = 6
    predictor_bias: int = 1          # append </s> so the model says where the sentence ends
    sampling_ratio: float = 0.5      # GLM: share of wrong tokens replaced by the truth
    ctc_weight: float = 0.3
    quantity_weight: float = 1.0
    label_smoothing: float = 0.1
    # The quantity loss (an L1 over token counts of ~20) dwarfs the CTC gradient and held a fresh
    # encoder on the CTC plateau for thousands of steps; the predictor reads a detached encoder
    # output so the encoder learns to align from CTC and the decoder first.
    detach_predictor: bool = True
    eos_id: int = 2


class Paraformer(nn.Module):
    def __init__(self, c: ParaformerConfig):
        super().__init__()
        if c.encoder.d_model != c.decoder.d_model:
            raise ValueError("Paraformer needs encoder and decoder of the same d_model")
        self.config = c
        self.encoder = ConformerEncoder(c.encoder)
        self.predictor = CifPredictor(c.encoder.d_model)
        # bidirectional over the CIF token embeddings, with cross-attention to the encoder
        self.decoder = TransformerStack(c.decoder, cross_attention=True)
        self.output = nn.Linear(c.decoder.d_model, c.vocab_size)
        self.embed = nn.Embedding(c.vocab_size, c.decoder.d_model)  # GLM sampler's ground truth
        self.ctc = nn.Linear(c.encoder.d_model, c.vocab_size) if c.ctc_weight > 0 else None
        # checkpoints and shipped bundles written before the shared stack held the decoder
        rename_keys_on_load(self, {"decoder_layers.": "decoder.layers.", "decoder_norm.": "decoder.norm."})

    frame_shift = property(lambda self: 0.01 * self.config.lfr_n)

    def decode_tokens(self, token_embeddings: Tensor, token_mask: Tensor, memory: Tensor,
                      memory_mask: Tensor) -> Tensor:
        x = self.decoder(token_embeddings, token_mask[:, None, :], memory, memory_mask[:, None, :])
        return self.output(x)

    def forward(self, feats: Tensor, feat_lens: Tensor, targets: Tensor, target_lens: Tensor) -> dict:
        """Training losses. targets [B, L] padded with -1."""
        c = self.config
        hidden, lens = self.encoder(feats, feat_lens)
        memory_mask = padding_mask(lens, hidden.size(1))
        if c.predictor_bias:
            targets = torch.cat([targets, targets.new_full((targets.size(0), 1), IGNORE)], 1)
            targets[torch.arange(targets.size(0)), target_lens] = c.eos_id
            target_lens = target_lens + 1
        alphas = self.predictor.alphas(hidden.detach() if c.detach_predictor else hidden, lens)
        predicted_count = alphas.sum(1)
        quantity_loss = F.l1_loss(predicted_count, target_lens.to(alphas.dtype))
        # train the decoder on embeddings integrated to the true length
        scaled = alphas * (target_lens / predicted_count.clamp(min=1e-4))[:, None]
        embeddings, _ = cif(hidden, scaled, target_lens)
        token_mask = padding_mask(target_lens, targets.size(1))

        if self.training and c.sampling_ratio > 0:  # GLM is a training device only
            with torch.no_grad():
                first = self.decode_tokens(embeddings, token_mask, hidden, memory_mask).argmax(-1)
                correct = ((first == targets) & token_mask).sum(1)
                n_sample = ((target_lens - correct).float() * c.sampling_ratio).long()
                scores = torch.rand(targets.shape, device=targets.device).masked_fill(~token_mask, 2.0)
                rank = scores.argsort(1).argsort(1)
                pick = (rank < n_sample[:, None]).unsqueeze(-1)
            embeddings = torch.where(pick, self.embed(targets.clamp(min=0)), embeddings)

        logits = self.decode_tokens(embeddings, token_mask, hidden, memory_mask)
        ce = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE,
                             label_smoothing=c.label_smoothing)
        loss = ce + c.quantity_weight * quantity_loss
        out = {"ce": ce, "quantity": quantity_loss}
        if self.ctc is not None:
            ctc_targets = targets.masked_fill(targets == c.eos_id, IGNORE) if c.predictor_bias else targets
            ctc_lens = target_lens - c.predictor_bias
            log_probs = self.ctc(hidden).log_softmax(-1).transpose(0, 1)
            ctc = F.ctc_loss(log_probs, ctc_targets.clamp(min=0), lens, ctc_lens, blank=0,
                             zero_infinity=True)
            loss = loss + c.ctc_weight * ctc
            out["ctc"] = ctc
        with torch.no_grad():
            out["acc"] = ((logits.argmax(-1) == targets) & token_mask).sum() / token_mask.sum()
        out["loss"] = loss
        return out

    def infer(self, feats: Tensor, feat_lens: Tensor, peaks: bool = False):
        """Log-probs [B, L, V], token counts [B] (including </s>) and fire frames [B, L].

        The output is put in the form every Paraformer runtime reads the same way: the sequence
        ends at the first </s> or at the last CIF token (predictor_bias: that position is the end
        marker), the end position says </s> outright, and blank and <s>, never targets, are
        never predicted. funasr-onnx (which drops the last position and filters ids 0 and 2) and
        sherpa-onnx (which stops at the first </s>) then read identical transcripts.
        With `peaks`, the last two outputs are instead the alphas and a [B, T + 1] mask that is
        1.0 on frames where one of the counted tokens fires (the export's timestamp outputs).
        """
        c = self.config
        hidden, lens = self.encoder(feats, feat_lens)
        alphas = self.predictor.alphas(hidden, lens)
        tailed_hidden, tailed_alphas = self.predictor.add_tail(hidden, alphas, lens)
        token_num = torch.floor(tailed_alphas.sum(1).double() + 1e-4).long().clamp(min=1)
        embeddings, fire_frames = cif(tailed_hidden, tailed_alphas, token_num)
        token_mask = padding_mask(token_num, embeddings.size(1))
        logits = self.decode_tokens(embeddings, token_mask, hidden, padding_mask(lens, hidden.size(1)))
        never = torch.zeros(logits.size(-1), dtype=torch.bool, device=logits.device)
        never[:2] = True  # blank, <s>
        log_probs = logits.masked_fill(never, float("-inf")).log_softmax(-1)
        position = torch.arange(logits.size(1), device=logits.device)[None, :]
        is_end = (log_probs.argmax(-1) == c.eos_id) | (position >= token_num[:, None] - 1)
        token_num = is_end.int().argmax(1) + 1  # first end position, counted
        end_row = torch.full_like(log_probs[:1, :1], float("-inf")).index_fill(2, torch.tensor([c.eos_id]), 0.0)
        log_probs = torch.where(position[..., None] == token_num[:, None, None] - 1, end_row, log_probs)
        if not peaks:
            return log_probs, token_num, fire_frames
        counted = padding_mask(token_num, fire_frames.size(1)).to(alphas.dtype)
        fired = torch.zeros_like(tailed_alphas).scatter_add(1, fire_frames, counted).clamp(max=1.0)
        return log_probs, token_num, tailed_alphas, fired

    @torch.no_grad()
    def transcribe(self, feats: Tensor, feat_lens: Tensor) -> list[tuple[list[int], list[float]]]:
        """(token ids, start seconds) per utterance: every position before the </s> that `infer`
        puts at token_num - 1, timed by the rule the ONNX runtime uses (`cif_token_starts`)."""
        log_probs, token_num, alphas, fired = self.infer(feats, feat_lens, peaks=True)
        best = log_probs.argmax(-1)
        out = []
        for b in range(best.size(0)):
            n = int(token_num[b]) - 1
            starts = cif_token_starts(alphas[b].numpy(), fired[b].numpy(), n)
            out.append((best[b, :n].tolist(), [round(s * self.frame_shift, 3) for s in starts]))
        return out
