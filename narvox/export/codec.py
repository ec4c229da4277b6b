"""Export a codec to an ONNX bundle: encoder.onnx (wav -> codes), decoder.onnx (codes -> wav)
and narvox.json. Batch, length and (for the decoder) the number of codebooks are dynamic.

The encoder graph expects whole frames (T a multiple of the hop): narvox.runtime pads, which keeps
data-dependent padding arithmetic out of the graph.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from narvox import registry
from narvox.bundle import write_bundle
from narvox.codecs.base import Codec
from narvox.codecs.model import codes_from_latent, latent_from_codes
from narvox.export.onnx_utils import export, store_weights_as_float16
from narvox.runtime.codec_inputs import MIN_FRAMES


class EncoderGraph(nn.Module):
    def __init__(self, encoder: nn.Module, vq: nn.Module, n_q: int):
        super().__init__()
        self.encoder, self.vq, self.n_q = encoder, vq, n_q

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return codes_from_latent(self.vq, self.encoder(wav[:, None]), self.n_q)


class DecoderGraph(nn.Module):
    def __init__(self, decoder: nn.Module, vq: nn.Module):
        super().__init__()
        self.decoder, self.vq = decoder, vq

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent_from_codes(self.vq, codes))[:, 0]


@contextlib.contextmanager
def _whole_frames():
    """encodec's convolutions compute their extra right padding with math.ceil, which tracing
    freezes into a constant for the example's length. For whole frames it is always 0, so the
    graph is traced with 0, and the runtime pads inputs to whole frames."""
    with mock.patch("encodec.modules.conv.get_extra_padding_for_conv1d", return_value=0):
        yield


def _parts(codec: Codec) -> tuple[nn.Module, nn.Module, nn.Module]:
    model = codec.model
    return model.encoder, model.quantizer.vq, model.decoder


def export_codec(codec: Codec, out_dir: str | Path, half_weights: bool = True) -> Path:
    """Write the bundle into `out_dir` (a narvox codec directory may hold it beside model.pt).
    `half_weights` stores float16 weights (half the size); ONNX Runtime casts them back to
    float32 once, when it loads the graph, so inference runs at full precision and speed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = registry.bundle_kind("codec")
    encoder, vq, decoder = _parts(codec)
    hop = codec.hop_length
    wav = torch.randn(2, hop * 20) * 0.1
    with _whole_frames():
        enc_path = export(EncoderGraph(encoder, vq, codec.max_codebooks), (wav,), out_dir / kind.files["encoder"],
                          kind.graphs["encoder"], [{0: "batch", 1: "samples"}, {0: "batch", 2: "frames"}])
        codes = torch.randint(0, codec.codebook_size, (2, codec.max_codebooks, 20))
        dec_path = export(DecoderGraph(decoder, vq), (codes,), out_dir / kind.files["decoder"], kind.graphs["decoder"],
                          [{0: "batch", 1: "codebooks", 2: "frames"}, {0: "batch", 1: "samples"}])
    if half_weights:
        for path in (enc_path, dec_path):
            store_weights_as_float16(path)
    write_bundle(out_dir, kind.name, {**codec.identity(), "hop_length": hop, "max_codebooks": codec.max_codebooks,
                                      "n_codebooks": codec.n_codebooks, "min_frames": MIN_FRAMES,
                                      "context_frames": codec.context_frames})
    return out_dir
