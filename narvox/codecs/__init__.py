"""Neural audio codecs: the `Codec` interface, EnCodec and the narvox codec.

    codec = load_codec("narvox")            # the shipped 16 kHz codec
    codes = codec.encode(wav)                # [T] or zero-padded [B, T] -> [B, Q, F]
    audio = codec.decode(codes)              # [B, T]; decode(codes, lengths) for a padded batch
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from narvox import bundle
from narvox.errors import NarvoxError

if TYPE_CHECKING:
    from narvox.codecs.base import Codec

PRETRAINED = bundle.PRETRAINED / "codec"  # shipped codecs: codec.yaml + model.pt beside the bundle


def load_codec(name_or_dir: str | Path = "narvox", bandwidth: float | None = None, **kwargs) -> Codec:
    """`narvox` (the shipped codec), a narvox codec directory (codec.yaml + model.pt), `encodec`
    (24 kHz, weights from torch hub's cache or `checkpoint=`), or an EnCodec .th file.
    `bandwidth` (kbps) picks the number of codebooks."""
    from narvox.codecs.encodec_codec import EncodecCodec
    from narvox.codecs.narvox_codec import NarvoxCodec
    name = str(name_or_dir)
    if name in ("encodec", "encodec_24khz"):
        return EncodecCodec(bandwidth or 6.0, **kwargs)
    path = Path(name_or_dir)
    if path.suffix == ".th" and path.is_file():
        return EncodecCodec(bandwidth or 6.0, checkpoint=path)
    if not (path / "codec.yaml").is_file() and (PRETRAINED / name).is_dir():
        path = PRETRAINED / name  # a shipped codec (even when a folder of that name is in the way)
    if (path / "codec.yaml").is_file():
        return NarvoxCodec.load(path, bandwidth=bandwidth, **kwargs)
    raise NarvoxError(f"no codec called {name!r}: expected 'narvox', 'encodec', a narvox codec directory "
                      f"(codec.yaml + model.pt) or an EnCodec .th checkpoint")


def __getattr__(name: str):
    # the PyTorch interface loads on first use, so torch-free code (narvox.codecs.dump on an
    # OnnxCodec) can import this package without torch
    if name == "Codec":
        from narvox.codecs.base import Codec
        return Codec
    raise AttributeError(f"module 'narvox.codecs' has no attribute '{name}'")


__all__ = ["Codec", "PRETRAINED", "load_codec"]
