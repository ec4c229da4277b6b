"""Conformer encoder with a CTC head and an optional autoregressive attention decoder.

With `decoder.n_layers == 0` this is a pure CTC model. With a decoder it is the hybrid
CTC/attention model of ESPnet and WeNet: trained on both losses, decodable by CTC (greedy,
prefix beam) or by the attention decoder (greedy, batched beam search with a KV cache) over the
very same encoder, which makes it the honest AR baseline for the NAR decoders.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from narvox.asr import search
from narvox.models.attention import PositionalEncoding, causal_mask, padding_mask
from narvox.models.conformer import ConformerEncoder, EncoderConfig
from narvox.models.transformer import DecoderConfig, TransformerStack, rename_keys_on_load

IGNORE = -1


@dataclass
class CtcAttentionConfig:
    vocab_size: int
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    ctc_weight: float = 0.3        # 1.0 with no decoder
    label_smoothing: float = 0.1
    sos_id: int = 1
    eos_id: int = 2


class AttentionDecoder(nn.Module):
    """Causal transformer decoder over token ids. Its exported step takes and returns four
    tensors: self keys/values [N, B, H, t, Dh] (growing) and cross keys/values [N, B, H, T, Dh]
    (computed once per utterance)."""

    def __init__(self, vocab_size: int, c: DecoderConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, c.d_model)
        self.pos = PositionalEncoding(c.d_model, c.dropout)
        self.transformer = TransformerStack(c, cross_attention=True)
        self.output = nn.Linear(c.d_model, vocab_size)
        # checkpoints written before the shared stack held its layers and norm directly
        rename_keys_on_load(self, {"layers.": "transformer.layers.", "norm.": "transformer.norm."})

    def forward(self, tokens: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Teacher forcing: tokens [B, L] -> logits [B, L, V]."""
        self_mask = causal_mask(tokens.size(1), device=tokens.device)[None]
        x = self.transformer(self.pos(self.embed(tokens)), self_mask, memory, memory_mask[:, None, :])
        return self.output(x)

    def cross_kv(self, memory: Tensor) -> list[tuple[Tensor, Tensor]]:
        return self.transformer.cross_kv(memory)

    def step(self, tokens: Tensor, offset: Tensor, self_k: Tensor, self_v: Tensor,
             cross_kv: list[tuple[Tensor, Tensor]], memory_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One token per hypothesis: tokens [B, 1] at position `offset` -> log-probs [B, V] and the
        self-attention cache [layers, B, heads, t, head_dim] grown by one position."""
        x, (k, v) = self.transformer.step(self.pos(self.embed(tokens), offset), (self_k, self_v),
                                          cross_kv, memory_mask[:, None, :])
        return self.output(x[:, -1]).log_softmax(-1), k, v


class CtcAttentionASR(nn.Module):
    def __init__(self, c: CtcAttentionConfig):
        super().__init__()
        self.config = c
        self.encoder = ConformerEncoder(c.encoder, cmvn=True)
        self.ctc = nn.Linear(c.encoder.d_model, c.vocab_size)
        self.decoder = AttentionDecoder(c.vocab_size, c.decoder) if c.decoder.n_layers > 0 else None
        if self.decoder is not None and c.decoder.d_model != c.encoder.d_model:
            raise ValueError("encoder and decoder must share d_model")

    frame_shift = property(lambda self: 0.01 * self.encoder.subsampling)

    def ctc_log_probs(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        hidden, lens = self.encoder(feats, feat_lens)
        return self.ctc(hidden).log_softmax(-1), lens, hidden

    def forward(self, feats: Tensor, feat_lens: Tensor, targets: Tensor, target_lens: Tensor) -> dict:
        c = self.config
        log_probs, lens, hidden = self.ctc_log_probs(feats, feat_lens)
        ctc = F.ctc_loss(log_probs.transpose(0, 1), targets.clamp(min=0), lens, target_lens, blank=0,
                         zero_infinity=True)
        out = {"ctc": ctc}
        if self.decoder is None:
            out["loss"] = ctc
            return out
        b = targets.size(0)
        sos = targets.new_full((b, 1), c.sos_id)
        tokens_in = torch.cat([sos, targets.masked_fill(targets == IGNORE, c.eos_id)], 1)
        tokens_out = torch.cat([targets, targets.new_full((b, 1), IGNORE)], 1)
        tokens_out[torch.arange(b), target_lens] = c.eos_id
        logits = self.decoder(tokens_in, hidden, padding_mask(lens, hidden.size(1)))
        att = F.cross_entropy(logits.transpose(1, 2), tokens_out, ignore_index=IGNORE,
                              label_smoothing=c.label_smoothing)
        with torch.no_grad():
            valid = tokens_out != IGNORE
            out["acc"] = ((logits.argmax(-1) == tokens_out) & valid).sum() / valid.sum()
        out.update(att=att, loss=c.ctc_weight * ctc + (1 - c.ctc_weight) * att)
        return out

    # ---- decoding ---------------------------------------------------------------------------
    @torch.no_grad()
    def transcribe(self, feats: Tensor, feat_lens: Tensor, method: str = "ctc_greedy",
                   beam: int = 5) -> list[tuple[list[int], list[float]]]:
        """(token ids, start seconds) per utterance.

        method: ctc_greedy | ctc_beam | attention_greedy | attention_beam | attention_rescore (the
        CTC beam's `beam` best rescored by the decoder). Greedy CTC timestamps come from the best
        path; other hypotheses are force-aligned with the CTC head.
        """
        log_probs, lens, hidden = self.ctc_log_probs(feats, feat_lens)
        lp, lens_np = log_probs.float().numpy(), lens.numpy()
        if method == "ctc_greedy":
            return [(ids, [round(f * self.frame_shift, 3) for f in frames])
                    for ids, frames in search.ctc_greedy(lp, lens_np)]
        if method == "ctc_beam":
            hyps = [search.ctc_prefix_beam_search(lp[b, :lens_np[b]], beam) for b in range(len(lp))]
        elif method in ("attention_greedy", "attention_beam", "attention_rescore"):
            if self.decoder is None:
                raise ValueError("this model has no attention decoder")
            if method == "attention_rescore":
                nbest = [search.ctc_prefix_beams(lp[b, :lens_np[b]], beam) for b in range(len(lp))]
                step, cache = self._decoder_step(hidden, lens, torch.tensor([len(n) for n in nbest]))
                hyps = search.attention_rescore(step, cache, nbest, self.config.sos_id, self.config.eos_id)
            else:
                hyps = self.attention_search(hidden, lens, 1 if method == "attention_greedy" else beam)
        else:
            raise ValueError(f"unknown decoding method '{method}'")
        return [(ids, [round(s * self.frame_shift, 3)
                       for s in search.ctc_align_starts(lp[b, :lens_np[b]], ids)])
                for b, ids in enumerate(hyps)]

    def attention_search(self, memory: Tensor, lens: Tensor, beam: int) -> list[list[int]]:
        """Beam search (greedy when beam == 1) with the decoder's KV cache."""
        c = self.config
        step, cache = self._decoder_step(memory, lens, beam)
        max_lens = (lens * search.MAX_TOKENS_PER_FRAME).long().clamp(min=1).tolist()
        return search.attention_beam_search(step, cache, lens.size(0), beam, max_lens, c.sos_id, c.eos_id)

    def _decoder_step(self, memory: Tensor, lens: Tensor, repeats: int | Tensor):
        """The decoder's `step` (narvox.asr.search.StepFn) with each utterance of `memory` as
        `repeats` rows (hypotheses), and its empty cache."""
        dec = self.decoder
        memory = memory.repeat_interleave(repeats, 0)
        memory_mask = padding_mask(lens, memory.size(1)).repeat_interleave(repeats, 0)
        cross_kv = dec.cross_kv(memory)
        rows, h, _, dh = cross_kv[0][1].shape
        empty = memory.new_zeros(len(cross_kv), rows, h, 0, dh).numpy()

        def step(tokens, position, cache):
            self_k, self_v = (torch.from_numpy(x) for x in cache)
            logp, self_k, self_v = dec.step(torch.from_numpy(tokens), torch.tensor(position),
                                            self_k, self_v, cross_kv, memory_mask)
            return logp.numpy(), (self_k.numpy(), self_v.numpy())

        return step, (empty, empty)
