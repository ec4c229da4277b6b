"""The narvox codec network: SEANet encoder -> residual VQ -> SEANet decoder.

Built from encodec's modules (SEANet, EMA codebooks with k-means init and dead-code restart).
narvox's own parts: the configuration (16 kHz speech, 50 frames/s), quantizer dropout (a random
depth per batch, so one model serves every bitrate up to `n_codebooks`), a decoding path that
looks all codebooks up in one gather, so the exported decoder takes any number of codebooks, a
choice of decoder (SEANet's, or the Vocos-style one of narvox.codecs.vocos), and a projection of
the first codebook's entries onto a recognizer's frame features, which training uses to make
that codebook phonetic (SpeechTokenizer's semantic distillation).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from encodec.modules import SEANetDecoder, SEANetEncoder
from encodec.quantization import ResidualVectorQuantizer
from torch import nn

from narvox.codecs.vocos import VocosDecoder


@dataclass
class CodecConfig:
    sample_rate: int = 16000
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])  # hop 320 -> 50 frames/s
    n_filters: int = 16
    dimension: int = 128
    lstm_layers: int = 1
    n_codebooks: int = 8
    codebook_size: int = 1024
    ema_decay: float = 0.99
    # expire a code whose EMA count (uses per batch, decay 0.99) falls below this. EnCodec uses 2
    # with ~5000 vectors per batch; 8 one-second crops give 400 for 1024 codes (0.4 each), so 2
    # would replace nearly every code at every step and no codebook could settle
    dead_code_threshold: float = 0.05
    kmeans_iters: int = 50
    decoder: str = "seanet"     # seanet | vocos
    decoder_dim: int = 192      # vocos: ConvNeXt width, MLP width, blocks, STFT frames per codec frame
    decoder_hidden: int = 576
    decoder_layers: int = 6
    decoder_upsample: int = 2
    semantic_dim: int = 0       # > 0: the width of the teacher features codebook 1 is distilled from
    # False: the encoder's biases are held at zero, so silence encodes to 0 and the latent is a
    # function of the input from the first step. A fresh SEANet encoder's output is ~98 % bias;
    # training grew the biases faster than the signal path, codebooks k-means-initialised on that
    # collapsed to one code and the codec did not learn in 1,000 steps (STOI 0.48); without
    # biases codebook 1 used 77-155 codes and the mel loss fell from the first 150 steps
    encoder_bias: bool = True

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def context_frames(self) -> int:
        """How many frames past an item's end its last frame looks (narvox.runtime.codec_inputs pads
        every item with this many, so batch-mates cannot change it). SEANet: 3.7 frames in the
        encoder, 3.65 in the decoder (measured). Vocos: its input conv and every block's kernel
        reach kernel // 2 frames each, and the ISTFT window two STFT hops more."""
        if self.decoder == "seanet":
            return 4
        return (1 + self.decoder_layers) * 3 + 1

    def to_dict(self) -> dict:
        return asdict(self)


class CodecModel(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        c = config
        seanet = dict(dimension=c.dimension, n_filters=c.n_filters, ratios=list(c.ratios), lstm=c.lstm_layers)
        self.encoder = SEANetEncoder(**seanet)
        if not c.encoder_bias:
            for name, p in self.encoder.named_parameters():
                if name.endswith("bias") or "bias_" in name:  # conv biases; the LSTM's bias_ih/hh
                    p.data.zero_()
                    p.requires_grad_(False)
        if c.decoder == "seanet":
            self.decoder = SEANetDecoder(**seanet)
        elif c.decoder == "vocos":
            self.decoder = VocosDecoder(c.dimension, c.hop_length, c.decoder_dim, c.decoder_hidden,
                                        c.decoder_layers, upsample=c.decoder_upsample)
        else:
            raise ValueError(f"unknown codec decoder '{c.decoder}' (seanet or vocos)")
        # training only: codebook 1's entries -> the teacher's feature space
        self.semantic = nn.Conv1d(c.dimension, c.semantic_dim, 1) if c.semantic_dim else None
        self.quantizer = ResidualVectorQuantizer(
            dimension=c.dimension, n_q=c.n_codebooks, bins=c.codebook_size, decay=c.ema_decay,
            kmeans_init=True, kmeans_iters=c.kmeans_iters, threshold_ema_dead_code=c.dead_code_threshold)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad [B, T] with zeros to whole frames: every conv then sees the lengths it was built
        for, and the exported graph needs no data-dependent padding."""
        frames = math.ceil(wav.size(-1) / self.hop_length)
        return F.pad(wav, (0, frames * self.hop_length - wav.size(-1)))

    def forward(self, wav: torch.Tensor, n_q: int | None = None):
        """Training pass: wav [B, T] -> (reconstruction [B, T], commitment loss, codes [B, n_q, F],
        codebook 1's entries projected for distillation [B, semantic_dim, F] or None).
        n_q = 0 bypasses the quantizer."""
        length = wav.size(-1)
        z = self.encoder(self.pad(wav)[:, None])
        if n_q == 0:  # the autoencoder alone, no codebook touched (CodecTask's quantizer warm-up)
            quantized, codes, commit = z, z.new_zeros((0, *z.shape[::2]), dtype=torch.long), z.new_zeros(())
        else:
            quantized, codes, commit = self.quantizer.vq(z, n_q=n_q or self.config.n_codebooks)
        recon = self.decoder(quantized)[:, 0, :length]
        semantic = None
        if self.semantic is not None:
            first = z if n_q == 0 else F.embedding(codes[0], self.quantizer.vq.layers[0].codebook).transpose(1, 2)
            # straight through, as the quantizer passes the decoder's gradient: the distillation
            # loss reaches the encoder, and the EMA codebook follows the encoder
            semantic = self.semantic(z + (first - z).detach())
        return recon, commit.mean(), codes.transpose(0, 1), semantic

    # encode/decode are the bare network. `Codec.encode/decode` pad their inputs first (whole frames,
    # MIN_FRAMES at least, context past each item's end: narvox.runtime.codec_inputs)

    def encode(self, wav: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """wav [B, T] (at least codec_inputs.MIN_FRAMES frames) -> codes [B, n_q, ceil(T / hop)]."""
        z = self.encoder(self.pad(wav)[:, None])
        return codes_from_latent(self.quantizer.vq, z, n_q or self.config.n_codebooks)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, Q, F] (F at least codec_inputs.MIN_FRAMES) -> waveform [B, F * hop]."""
        return self.decoder(latent_from_codes(self.quantizer.vq, codes))[:, 0]


def codes_from_latent(vq: nn.Module, z: torch.Tensor, n_q: int) -> torch.Tensor:
    """Residual quantisation of the encoder's output [B, D, F] -> codes [B, n_q, F]: each codebook
    takes the nearest entry to what the previous ones left. Same result as encodec's
    `vq.encode`, written with plain tensor ops so the exported graph keeps F dynamic."""
    b, d, f = z.shape
    residual = z.transpose(1, 2).reshape(b * f, d)
    codes = []
    for layer in vq.layers[:n_q]:
        table = layer.codebook  # [K, D]
        # |r|^2 is the same for every entry: the nearest entry maximises 2 e.r - |e|^2. Written as
        # table @ residual^T so the exported graph multiplies by the stored table instead of
        # keeping a second, transposed copy of it
        scores = 2 * (table @ residual.t()) - table.pow(2).sum(-1, keepdim=True)  # [K, B*F]
        index = scores.argmax(0)
        residual = residual - F.embedding(index, table)
        codes.append(index.view(b, f))
    return torch.stack(codes, 1)


def latent_from_codes(vq: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    """codes [B, Q, F] -> the decoder's input [B, D, F]: the sum of each codebook's entry, gathered
    from one stacked table so that Q can vary at run time (encodec's RVQ loops over layers).
    Serves encodec's own models too: their codebooks have no projection either."""
    table = torch.stack([layer.codebook for layer in vq.layers])  # [N, K, D]
    n, k, d = table.shape
    offsets = torch.arange(codes.size(1), device=codes.device)[None, :, None] * k
    entries = F.embedding(codes + offsets, table.reshape(n * k, d))  # [B, Q, F, D]
    return entries.sum(1).transpose(1, 2)
